"""stylize: fast neural style transfer with conditional instance normalization."""

__version__ = "0.1.0"
