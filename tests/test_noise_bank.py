"""The noise bank's cap: `max_patches` keeps the flattest windows of all frames, not the first ones scanned."""

from __future__ import annotations

import numpy as np

from lab.noise_bank import extract_noise_patches


def _frame(rng: np.random.Generator, ramp: float, sigma: float) -> np.ndarray:
    """A 96 px frame: a horizontal ramp of slope `ramp` (0: flat) plus Gaussian noise of std `sigma`."""
    xx = np.mgrid[0:96, 0:96][1] / 96.0
    img = 0.4 + ramp * xx[..., None] + rng.normal(0, sigma, (96, 96, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def test_max_patches_keeps_the_flattest_windows_of_all_frames():
    rng = np.random.default_rng(0)
    # the sloped frames come first in scan order; the flat frame's windows are the flattest of all
    frames = [_frame(rng, 0.4, 0.01), _frame(rng, 0.4, 0.01), _frame(rng, 0.0, 0.05)]
    every = extract_noise_patches(frames, 32, flat_quantile=1.0)
    capped = extract_noise_patches(frames, 32, flat_quantile=1.0, max_patches=9)
    assert len(every) > len(capped)
    assert len(capped) == 9
    # all nine from the flat frame: their noise is that frame's (std 0.05), not the sloped frames' (0.01)
    per_patch = capped.patches.std(axis=(1, 2, 3))
    assert per_patch.min() > 0.03
