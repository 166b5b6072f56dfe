"""The process a run lives in: devices, precision, process-wide settings, torchrun."""
