"""Degradations: pure ops on image batches, samplers drawing their parameters from an explicit generator, and
pipelines / named presets that turn an HR patch into its LR input.

The package: `functional` (pure ops and their argument checks), `sampling` (range samplers and the op table),
`pipeline` (steps, stages, `Pipeline`), `presets` (named recipes and `build`). Everything public is here.

Conventions: tensors are (B, C, H, W) float32 in [0, 1]; every op's output is clipped to [0, 1]. Lengths are in
pixels, angles in degrees, noise sigma in [0, 1] units (names ending in `_255` are in 0-255 units).

Every op is an `Op` (see `list_ops()`, `get_op(name)`): `op.sample_params(rng, **ranges) -> dict` draws plain,
JSON-able parameters from a `numpy.random.Generator`; `op.apply(x, params)` is deterministic (noise is drawn from a
`seed` inside params), so a recorded params dict replays byte for byte, also after a JSON round trip. A range is
a number (fixed) or `(lo, hi)` (uniform; inclusive integers where the parameter is an integer); a choice is a name
or a list of names (uniform, or weighted by the op's `*_probs` range).

A `Pipeline` is an optional `hr_ops` stage (geometry on the HR: rescale, aspect change, crop; its output becomes the
new target, so data code calls `apply_pair` when `pipeline.changes_hr`) then stages of steps run on the image.
Each step is (name, op, ranges, probability); a stage has a probability and may shuffle its blocks (the order is
sampled and recorded in params). The HR is cropped to a multiple of an integer `scale` and the pipeline must end at
(H // scale, W // scale) (a `downscale` step resizes to that target).

Presets (`list_presets()`; `preset_overrides(name)` lists every override name with its default). An override is
`<step>_<range>` or `<step>_prob` or `<stage>_prob` / `<stage>_shuffle`; `hr_ops=[[op, ranges, prob], ...]` adds
HR geometry to any preset. The short names most used:
- `bicubic`: MATLAB bicubic down (the benchmark LR). `down_mode`.
- `blur_bicubic`: Gaussian blur on the HR, then bicubic down. `blur_sigma` (0.2, 3.0), `blur_sigma_y` (None:
  isotropic), `blur_angle`, `blur_size` (0: 2 ceil(3 sigma) + 1).
- `noisy_bicubic`: bicubic down, then Gaussian noise. `noise_sigma_255` (1, 25) or `noise_sigma`, `noise_gray_prob`.
- `jpeg`: bicubic down, then JPEG. `quality` (= `jpeg_quality`, (30, 95)).
- `second_order`: Real-ESRGAN's two passes (blur -> random resize -> Gaussian/Poisson noise -> JPEG, twice), then
  [resize to target + sinc] and [JPEG] in random order. `blur_*`, `resize_*`, `noise_*`, `jpeg_quality`, the same
  with a `2` for the second pass (`blur2_sigma`, ...), `second_prob`, `final_sinc_prob`, `final_jpeg_quality`.
- `realsr`: a real kernel from a bank, strided down ('nearest'), real noise from a bank (Ji et al. 2020). Needs `kernel_bank`
  (folder of .npy/.png kernels) and `noise_bank` (.npz from `extract_noise_patches`), each or both 'builtin' (a
  synthetic kernel bank, noise from the built-in photos); `noise_strength`, `down_mode`.
- `deblur_motion` (scale 1): motion blur (straight line or random trajectory) + light noise. `blur_length`,
  `blur_angle`, `blur_kinds`, `noise_sigma_255`.
- `denoise_gaussian` (scale 1): Gaussian noise. `sigma_255` (0, 50) or `sigma`, `gray_prob`.
Examples: `build('blur_bicubic', scale=4, blur_sigma=(0.2, 3.0))`, `build({'preset': 'jpeg', 'quality': (30, 95)})`.
"""

from lab.degrade.functional import (
    POISSON_PEAK,
    RESIZE_MODES,
    add_gaussian_noise,
    add_poisson_noise,
    add_salt_pepper,
    add_speckle_noise,
    adjust_brightness,
    adjust_contrast,
    adjust_gamma,
    blur,
    change_aspect,
    check_probability,
    check_seed,
    check_value,
    crop,
    gaussian_blur,
    jpeg,
    jpeg_uint8,
    rescale_hr,
    resize,
    unsharp_mask,
    webp,
    webp_available,
    webp_uint8,
)
from lab.degrade.pipeline import Pipeline, Stage, Step
from lab.degrade.presets import PRESETS, Preset, build, list_presets, preset_overrides
from lab.degrade.sampling import OPS, Op, get_op, list_ops
from lab.kernels import make_kernel
from lab.noise_bank import NoiseBank, add_bank_noise, extract_noise_patches

__all__ = ["POISSON_PEAK", "RESIZE_MODES", "add_bank_noise", "Op", "OPS", "Pipeline", "Preset", "PRESETS", "Step", "Stage", "build", "list_presets", "list_ops",
           "get_op", "preset_overrides", "resize", "blur", "gaussian_blur", "add_gaussian_noise", "add_poisson_noise",
           "add_speckle_noise", "add_salt_pepper", "jpeg", "jpeg_uint8", "webp", "webp_uint8", "webp_available",
           "adjust_contrast", "adjust_gamma", "adjust_brightness", "unsharp_mask", "rescale_hr", "change_aspect",
           "crop", "check_probability", "check_seed", "check_value", "NoiseBank", "extract_noise_patches",
           "make_kernel"]
