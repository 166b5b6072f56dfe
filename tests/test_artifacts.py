"""The artifact measures of benchmarks/artifacts.py find what they are meant to, and nothing else."""

import numpy as np

from benchmarks.artifacts import blotches, box, dithered, halos


def textured(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A (3, H, W) photo with texture everywhere: strokes of its own to paint from."""
    return np.random.default_rng(seed).uniform(0.2, 0.8, (3, height, width)).astype(np.float32)


def test_box_is_the_windowed_mean():
    image = np.random.default_rng(1).random((9, 11))
    assert np.isclose(box(image, 2)[4, 5], image[2:7, 3:8].mean())


def test_a_flat_bright_patch_over_a_clipped_highlight_counts_as_its_area():
    photo = textured()
    photo[:, :30, :40] = 1.0  # a blown-out sky: 1/16 of the picture
    render = textured(seed=2)
    assert blotches(photo, render) == 0  # painted strokes everywhere
    render[:, :30, :40] = 0.6  # painted flat and bright where the photo gave nothing
    # Its area, less the rim that the window of the local deviation (4 px) sees past.
    assert 100 * 26 * 36 / (120 * 160) <= blotches(photo, render) <= 100 / 16
    dark = render.copy()
    dark[:, :30, :40] = 0.2
    assert blotches(photo, dark) == 0  # flat but dark: a shadow, not a blotch


def test_a_band_traced_along_a_strong_edge_is_a_halo():
    photo = np.full((3, 120, 160), 0.3, np.float32)
    photo[:, :, 80:] = 0.8  # one strong vertical edge
    assert halos(photo, photo.copy()) == (0, 0)
    haloed = photo.copy()
    haloed[:, :, 84:94] += 0.15  # a light band just beside it
    near, far = halos(photo, haloed)
    assert near > 5 and far < 1


def test_dither_is_seeded_and_only_where_the_photo_is_flat():
    photo = textured()
    photo[:, :30, :40] = 1.0
    noisy = dithered(photo, 0.05)
    assert np.array_equal(noisy, dithered(photo, 0.05))
    assert np.array_equal(noisy[:, 60:, 60:], photo[:, 60:, 60:])
    assert noisy[:, :30, :40].std() > 0.01
