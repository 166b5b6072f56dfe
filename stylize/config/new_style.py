"""Learning a new style's row (``add-style``, and ``apply --style-image`` on the fly): its own
defaults, apart from training's, since applying needs them without loading the rest."""

ADD_STEPS = 2000
"""Default steps of ``add-style``: a style is ~3,200 numbers (johnson network), not 1.7 M weights."""

STYLE_LR = 1e-2
"""Learning rate of new style rows (add-style and on the fly), not the model's own (1e-3 for a
whole network): with Adam each number moves at most ~lr a step, and gamma/beta must travel
O(1) from the mean row. ``benchmarks/new_style_quality.py`` compares the two (README,
"Quality: as good as a network trained on the painting alone?")."""

QUICK_CPU = dict(steps=130, image_size=128, batch_size=1, lr=0.025, final_lr_fraction=0.2, workers=0)
"""``apply --style-image`` on a CPU: a first look from the nearest shipped style, short enough to wait
for (``--style-steps`` asks for more). The cost is the steps times the crop's pixels, and the held-out
paintings were step-bound: at one cost, more steps of smaller crops came nearer the model's own rows than
fewer of larger ones (``benchmarks/style_image_holdout.py``; the figures in ``benchmarks/README.md``).
0.025 rather than 0.01 (too slow) or 0.1 (noisy); the rate decays (cosine) to a fifth, not to the
model's 1/100: the last steps of so short a run still move the rows."""

QUICK_GPU = dict(steps=500, image_size=256, batch_size=8, lr=STYLE_LR, workers=2)
"""``apply --style-image`` on a GPU: training-size crops, seconds."""
