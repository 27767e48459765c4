"""Samplers and the op table: every degradation op as an `Op` with default ranges, a sampler that draws plain,
JSON-able parameters from an explicit `numpy.random.Generator`, and a deterministic apply.

A range is a number (fixed) or `(lo, hi)` (uniform; inclusive integers where the parameter is an integer); a choice
is a name or a list of names (uniform, or weighted by the op's `*_probs` range). `list_ops()` / `get_op(name)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from lab.degrade.functional import (
    ASPECT_METHODS,
    BLUR_TYPES,
    CONTRAST_CENTERS,
    MOTION_KINDS,
    NOISE_KINDS,
    POISSON_PEAK,
    RESIZE_MODES,
    SEED_MAX,
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
    check_quality,
    check_value,
    crop,
    is_number,
    jpeg,
    rescale_hr,
    resize,
    transfer_curve,
    unsharp_mask,
    webp,
)
from lab.images import check_image_tensor
from lab.kernels import auto_size, load_kernel_bank, make_kernel
from lab.noise_bank import add_bank_noise, load_bank
from lab.registry import Registry

# ------------------------------------------------------------------------------------------------- sampling

def _num(rng: np.random.Generator, r: Any, name: str, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, integer: bool = False) -> float | int:
    """A number from a range: a number (fixed) or (lo, hi) (uniform; inclusive for integers), bounds checked."""
    if isinstance(r, (list, tuple)):
        if len(r) != 2 or not all(is_number(v) for v in r):
            raise ValueError(f"range {name} must be a number or (lo, hi), got {r!r}")
        a = check_value(f"{name} (lower end)", r[0], lo, hi, lo_open)
        b = check_value(f"{name} (upper end)", r[1], lo, hi, lo_open)
        if a > b:
            raise ValueError(f"range {name} = {r!r} has lo > hi")
        if integer:
            if a != int(a) or b != int(b):
                raise ValueError(f"range {name} takes integers, got {r!r}")
            return int(rng.integers(int(a), int(b) + 1)) if a < b else int(a)
        return float(rng.uniform(a, b)) if a < b else a
    v = check_value(name, r, lo, hi, lo_open)
    if integer:
        if v != int(v):
            raise ValueError(f"{name} takes an integer, got {r!r}")
        return int(v)
    return v


def _choice(rng: np.random.Generator, options: Any, probs: Any, name: str, known: Sequence[str]) -> str:
    """A name from `options` (a name or a list of names, uniform unless `probs` gives weights)."""
    opts = [options] if isinstance(options, str) else list(options)
    bad = [o for o in opts if o not in known]
    if not opts or bad:
        raise ValueError(f"{name} must be among {list(known)}, got {options!r}")
    if len(opts) == 1:
        return opts[0]
    if probs is None:
        return opts[int(rng.integers(len(opts)))]
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(opts),) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"{name} probabilities {probs!r} must be {len(opts)} non-negative weights")
    return opts[int(rng.choice(len(opts), p=p / p.sum()))]


def flag(rng: np.random.Generator, p: Any, name: str) -> bool:
    """True with probability p (draws nothing when p is 0 or 1, so fixed choices leave the stream alone)."""
    p = check_probability(p, name)
    return bool(p >= 1 or (p > 0 and rng.random() < p))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, SEED_MAX))


def _odd_size(rng: np.random.Generator, r: Any, name: str = "size") -> int:
    """An odd kernel size from a number or an inclusive (lo, hi) range of sizes (uniform over the odd ones)."""
    if isinstance(r, (list, tuple)) and len(r) == 2 and all(is_number(v) for v in r):
        lo = int(r[0]) | 1
        sizes = list(range(lo, int(r[1]) + 1, 2))
        if not sizes or r[0] < 1:
            raise ValueError(f"{name} range {r!r} holds no odd size >= 1")
        return sizes[int(rng.integers(len(sizes)))] if len(sizes) > 1 else sizes[0]
    v = _num(rng, r, name, lo=1, integer=True)
    if v % 2 == 0:
        raise ValueError(f"{name} must be odd, got {v}")
    return int(v)


# -------------------------------------------------------------------------------------------------- op table

Apply = Callable[[torch.Tensor, dict, "tuple[int, int] | None"], torch.Tensor]
Sample = Callable[[np.random.Generator, dict], dict]


@dataclass(frozen=True)
class Op:
    """A named degradation: default ranges, a sampler (ranges -> params) and a deterministic apply (params).

    `hr` ops change the HR itself (geometry) and run in a pipeline's `hr_ops` stage.
    """

    name: str
    defaults: dict[str, Any]
    sampler: Sample
    applier: Apply
    doc: str
    hr: bool = False
    exclusive: dict[str, str] = field(default_factory=dict)  # setting one range clears the other (sigma / sigma_255)

    def ranges(self, **ranges: Any) -> dict[str, Any]:
        """The default ranges updated with `ranges` (KeyError for unknown names)."""
        unknown = sorted(set(ranges) - set(self.defaults))
        if unknown:
            raise KeyError(f"op {self.name!r} has no range {unknown[0]!r}; its ranges: {list(self.defaults)}")
        out = {**self.defaults, **ranges}
        for k, v in ranges.items():
            other = self.exclusive.get(k)
            if other and v is not None and other not in ranges:
                out[other] = None
        return out

    def sample_params(self, rng: np.random.Generator, **ranges: Any) -> dict[str, Any]:
        """Draw this op's parameters (plain JSON-able values) from `rng` and the (default or given) ranges."""
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"sample_params needs a numpy.random.Generator (np.random.default_rng(seed)), "
                             f"got {type(rng).__name__}")
        return self.sampler(rng, self.ranges(**ranges))

    def apply(self, x: torch.Tensor, params: dict[str, Any], target: tuple[int, int] | None = None) -> torch.Tensor:
        """Apply with recorded `params` (deterministic); `target` is the pipeline's LR size (h, w).

        Shape: (B, C, H, W) -> (B, C, H', W'), float in [0, 1].
        """
        check_image_tensor(x, self.name)
        return self.applier(x, params, target)

    def __call__(self, x: torch.Tensor, rng: np.random.Generator, **ranges: Any) -> torch.Tensor:
        """apply(x, sample_params(rng, **ranges)). Shape: (B, C, H, W) -> (B, C, H', W')."""
        return self.apply(x, self.sample_params(rng, **ranges))


OPS = Registry("degradation op")


def _op(name: str, defaults: dict[str, Any], sampler: Sample, applier: Apply, doc: str, hr: bool = False,
        exclusive: dict[str, str] | None = None) -> None:
    OPS.register(Op(name, defaults, sampler, applier, doc, hr, exclusive or {}), name=name)


def list_ops() -> list[str]:
    """Names of the registered degradation ops."""
    return OPS.names()


def get_op(name: str) -> Op:
    """The op called `name` (KeyError listing the known ones)."""
    return OPS[name]


def _need_target(target: tuple[int, int] | None, op: str) -> tuple[int, int]:
    if target is None:
        raise ValueError(f"op {op!r} resizes to the pipeline's target size; run it in a Pipeline or pass "
                         "target=(h, w) to Op.apply")
    return target


# resampling
_op("downscale", {"mode": "bicubic", "mode_probs": None},
    lambda rng, r: {"mode": _choice(rng, r["mode"], r["mode_probs"], "mode", RESIZE_MODES)},
    lambda x, p, t: resize(x, size=_need_target(t, "downscale"), mode=p["mode"]),
    "Resize to the pipeline's LR target size (mode: a name or a list to choose from).")


def _s_resize(rng: np.random.Generator, r: dict) -> dict:
    return {"factor": _num(rng, r["factor"], "factor", lo=0, lo_open=True),
            "mode": _choice(rng, r["mode"], r["mode_probs"], "mode", RESIZE_MODES)}


_op("resize", {"factor": 1.0, "mode": "bicubic", "mode_probs": None}, _s_resize,
    lambda x, p, t: resize(x, scale=p["factor"], mode=p["mode"]),
    "Resize by a factor (any value > 0, output ceil(H * factor)).")


def _s_random_resize(rng: np.random.Generator, r: dict) -> dict:
    kind = _choice(rng, ["up", "down", "keep"], r["probs"], "resize direction", ("up", "down", "keep"))
    factor = 1.0 if kind == "keep" else _num(rng, r[kind], kind, lo=0, lo_open=True)
    if r["relative_to"] not in ("current", "target"):
        raise ValueError(f"relative_to must be 'current' or 'target', got {r['relative_to']!r}")
    return {"factor": factor, "mode": _choice(rng, r["modes"], None, "modes", RESIZE_MODES),
            "relative_to": r["relative_to"]}


def _a_random_resize(x: torch.Tensor, p: dict, t: tuple[int, int] | None) -> torch.Tensor:
    base = x.shape[-2:] if p["relative_to"] == "current" else _need_target(t, "random_resize")
    f = check_value("resize factor", p["factor"], lo=0, lo_open=True)
    return resize(x, size=(max(1, round(base[0] * f)), max(1, round(base[1] * f))), mode=p["mode"])


_op("random_resize", {"up": (1.0, 1.5), "down": (0.15, 1.0), "probs": (0.2, 0.7, 0.1),
                      "modes": ["area", "bilinear", "bicubic"], "relative_to": "current"},
    _s_random_resize, _a_random_resize,
    "Real-ESRGAN random resize: up / down / keep with `probs`, factor from `up` or `down`, random mode; "
    "relative to the current size or to the LR target.")


# blur
def _a_blur(x: torch.Tensor, p: dict, t: Any) -> torch.Tensor:
    return blur(x, make_kernel(p["kernel"]))


def _s_mixed_blur(rng: np.random.Generator, r: dict) -> dict:
    size = _odd_size(rng, r["size"])
    if flag(rng, r["sinc_prob"], "sinc_prob"):
        lo = math.pi / 3 if size < 13 else math.pi / 5  # small kernels cannot hold a low cutoff's ringing
        return {"kernel": {"type": "sinc", "size": size, "omega": float(rng.uniform(lo, math.pi))}}
    kind = _choice(rng, r["types"], r["type_probs"], "blur types", BLUR_TYPES)
    sx = _num(rng, r["sigma"], "sigma", lo=0, lo_open=True)
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sy = sx if iso else _num(rng, r["sigma"], "sigma", lo=0, lo_open=True)
    angle = 0.0 if iso else _num(rng, r["angle"], "angle")
    family = {"iso": "gaussian", "aniso": "gaussian"}.get(kind, kind.split("_")[0])
    spec = {"type": family, "size": size, "sigma_x": sx, "sigma_y": sy, "angle": angle}
    if spec["type"] == "generalized":
        bg = r["beta_gen"]
        if isinstance(bg, (list, tuple)) and len(bg) == 2 and bg[0] < 1 < bg[1]:
            # as Real-ESRGAN: half the draws below 1 (heavy tails), half above (flat top)
            spec["beta"] = float(rng.uniform(bg[0], 1.0) if rng.random() < 0.5 else rng.uniform(1.0, bg[1]))
        else:
            spec["beta"] = _num(rng, bg, "beta_gen", lo=0, lo_open=True)
    elif spec["type"] == "plateau":
        spec["beta"] = _num(rng, r["beta_plateau"], "beta_plateau", lo=0, lo_open=True)
    return {"kernel": spec}


_op("blur", {"types": list(BLUR_TYPES), "type_probs": (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), "size": (7, 21),
             "sigma": (0.2, 3.0), "angle": (0.0, 180.0), "beta_gen": (0.5, 4.0), "beta_plateau": (1.0, 2.0),
             "sinc_prob": 0.1},
    _s_mixed_blur, _a_blur,
    "Real-ESRGAN mixed blur: iso/aniso Gaussian, generalized Gaussian, plateau kernels (or a sinc, sinc_prob); "
    "odd size from `size`, sigmas in px, angle in degrees.")


def _s_gaussian_blur(rng: np.random.Generator, r: dict) -> dict:
    sx = _num(rng, r["sigma"], "sigma", lo=0, lo_open=True)
    aniso = r["sigma_y"] is not None
    sy = _num(rng, r["sigma_y"], "sigma_y", lo=0, lo_open=True) if aniso else sx
    angle = _num(rng, r["angle"], "angle") if aniso else 0.0
    size = _num(rng, r["size"], "size", lo=0, integer=True)
    size = size or auto_size(3 * max(sx, sy))
    if size % 2 == 0:
        raise ValueError(f"blur size must be odd (or 0 for automatic), got {size}")
    return {"kernel": {"type": "gaussian", "size": size, "sigma_x": sx, "sigma_y": sy, "angle": angle}}


_op("gaussian_blur", {"sigma": (0.2, 3.0), "sigma_y": None, "angle": (0.0, 180.0), "size": 0},
    _s_gaussian_blur, _a_blur,
    "Gaussian blur: `sigma` px (isotropic) or with `sigma_y` anisotropic at `angle` degrees; size 0 = auto.")


def _s_motion(rng: np.random.Generator, r: dict) -> dict:
    kind = _choice(rng, r["kinds"], r["kind_probs"], "motion kinds", MOTION_KINDS)
    length = _num(rng, r["length"], "length", lo=0)
    angle = _num(rng, r["angle"], "angle")
    if kind == "line":
        return {"kernel": {"type": "motion_line", "length": length, "angle": angle}}
    return {"kernel": {"type": "motion_trajectory", "length": length, "angle": angle,
                       "jitter": _num(rng, r["jitter"], "jitter", lo=0), "seed": _seed(rng)}}


_op("motion_blur", {"kinds": list(MOTION_KINDS), "kind_probs": None, "length": (3.0, 15.0),
                    "angle": (0.0, 360.0), "jitter": (0.1, 0.5)},
    _s_motion, _a_blur,
    "Motion blur: a straight line (`length` px at `angle` degrees) or a random camera-shake trajectory "
    "(`jitter` radians of turn per step).")
_op("defocus_blur", {"radius": (1.0, 4.0)},
    lambda rng, r: {"kernel": {"type": "disk", "radius": _num(rng, r["radius"], "radius", lo=0)}}, _a_blur,
    "Defocus: a uniform disk of `radius` px.")
_op("sinc", {"omega": (math.pi / 3, math.pi), "size": (7, 21)},
    lambda rng, r: {"kernel": {"type": "sinc", "size": _odd_size(rng, r["size"]),
                               "omega": _num(rng, r["omega"], "omega", lo=0, hi=math.pi, lo_open=True)}},
    _a_blur,
    "Sinc (2-D circular low-pass) with cutoff `omega` radians/pixel in (0, pi]: ringing and overshoot.")


def _s_bank_kernel(rng: np.random.Generator, r: dict) -> dict:
    if not r["path"]:
        raise ValueError("op 'kernel_bank' needs path=<folder of .npy/.png kernels> (preset 'realsr': "
                         "build('realsr', kernel_bank='path/to/kernels', noise_bank='path/to/noise.npz'))")
    n = len(load_kernel_bank(r["path"]))
    return {"kernel": {"type": "bank", "path": str(r["path"]), "index": int(rng.integers(n))}}


_op("kernel_bank", {"path": None}, _s_bank_kernel, _a_blur,
    "Blur with a random kernel of a folder of .npy/.png kernels (normalised to sum 1), e.g. estimated ones.")


# noise
def _s_gaussian_noise(rng: np.random.Generator, r: dict) -> dict:
    if (r["sigma"] is None) == (r["sigma_255"] is None):
        raise ValueError(f"give one of sigma ([0, 1] units) or sigma_255; got sigma={r['sigma']!r}, "
                         f"sigma_255={r['sigma_255']!r}")
    sigma = (_num(rng, r["sigma"], "sigma", lo=0) if r["sigma"] is not None
             else _num(rng, r["sigma_255"], "sigma_255", lo=0) / 255.0)
    return {"sigma": sigma, "gray": flag(rng, r["gray_prob"], "gray_prob"), "seed": _seed(rng)}


_op("gaussian_noise", {"sigma": None, "sigma_255": (1.0, 25.0), "gray_prob": 0.0}, _s_gaussian_noise,
    lambda x, p, t: add_gaussian_noise(x, p["sigma"], p["gray"], p["seed"]),
    "Additive Gaussian noise, `sigma` in [0, 1] units or `sigma_255`; gray (same in all channels) "
    "with `gray_prob`.", exclusive={"sigma": "sigma_255", "sigma_255": "sigma"})
_op("poisson_noise", {"scale": (0.05, 3.0), "gray_prob": 0.0},
    lambda rng, r: {"scale": _num(rng, r["scale"], "scale", lo=0), "gray": flag(rng, r["gray_prob"], "gray_prob"),
                    "seed": _seed(rng)},
    lambda x, p, t: add_poisson_noise(x, p["scale"], p["gray"], p["seed"]),
    f"Shot noise (Poisson at {POISSON_PEAK:.0f} photons for white) times `scale`; gray with `gray_prob`.")


def _s_noise(rng: np.random.Generator, r: dict) -> dict:
    if flag(rng, r["gaussian_prob"], "gaussian_prob"):
        p = {"kind": "gaussian", "sigma": _num(rng, r["sigma_255"], "sigma_255", lo=0) / 255.0}
    else:
        p = {"kind": "poisson", "scale": _num(rng, r["poisson_scale"], "poisson_scale", lo=0)}
    return {**p, "gray": flag(rng, r["gray_prob"], "gray_prob"), "seed": _seed(rng)}


def _a_noise(x: torch.Tensor, p: dict, t: Any) -> torch.Tensor:
    if p["kind"] == "gaussian":
        return add_gaussian_noise(x, p["sigma"], p["gray"], p["seed"])
    if p["kind"] == "poisson":
        return add_poisson_noise(x, p["scale"], p["gray"], p["seed"])
    raise ValueError(f"noise kind must be one of {list(NOISE_KINDS)}, got {p['kind']!r}")


_op("noise", {"gaussian_prob": 0.5, "sigma_255": (1.0, 30.0), "poisson_scale": (0.05, 3.0), "gray_prob": 0.4},
    _s_noise, _a_noise,
    "Real-ESRGAN noise: Gaussian (`sigma_255`) with `gaussian_prob`, else Poisson (`poisson_scale`); gray with "
    "`gray_prob`.")
_op("speckle_noise", {"sigma": (0.0, 0.1)},
    lambda rng, r: {"sigma": _num(rng, r["sigma"], "sigma", lo=0), "seed": _seed(rng)},
    lambda x, p, t: add_speckle_noise(x, p["sigma"], p["seed"]),
    "Multiplicative noise x + x * N(0, sigma^2), sigma in [0, 1] units.")
_op("salt_pepper", {"amount": (0.0, 0.02), "salt_ratio": 0.5},
    lambda rng, r: {"amount": _num(rng, r["amount"], "amount", lo=0, hi=1),
                    "salt_ratio": _num(rng, r["salt_ratio"], "salt_ratio", lo=0, hi=1), "seed": _seed(rng)},
    lambda x, p, t: add_salt_pepper(x, p["amount"], p["salt_ratio"], p["seed"]),
    "Impulse noise on a fraction `amount` of pixels, `salt_ratio` of them white.")


def _s_bank_noise(rng: np.random.Generator, r: dict) -> dict:
    if not r["path"]:
        raise ValueError("op 'bank_noise' needs path=<noise bank .npz> made by lab.degrade.extract_noise_patches"
                         "(...).save(path) (preset 'realsr': build('realsr', noise_bank='path/to/noise.npz', ...))")
    load_bank(r["path"])  # fail now, not in the first batch
    return {"path": str(r["path"]), "strength": _num(rng, r["strength"], "strength", lo=0), "seed": _seed(rng)}


_op("bank_noise", {"path": None, "strength": 1.0}, _s_bank_noise,
    lambda x, p, t: add_bank_noise(x, load_bank(p["path"]), p["strength"], p["seed"]),
    "Real noise: random zero-mean patches of a NoiseBank tiled over the image, times `strength`.")

# compression
_op("jpeg", {"quality": (30, 95)},
    lambda rng, r: {"quality": check_quality(_num(rng, r["quality"], "quality", 1, 100, integer=True), "JPEG")},
    lambda x, p, t: jpeg(x, p["quality"]), "JPEG at an integer `quality` in 1..100.")
_op("webp", {"quality": (30, 95)},
    lambda rng, r: {"quality": check_quality(_num(rng, r["quality"], "quality", 1, 100, integer=True), "WebP")},
    lambda x, p, t: webp(x, p["quality"]), "WebP at an integer `quality` in 1..100 (if OpenCV has WebP).")

# tone
_op("contrast", {"factor": (0.7, 1.3), "center": "mean"},
    lambda rng, r: {"factor": _num(rng, r["factor"], "factor", lo=0),
                    "center": _choice(rng, r["center"], None, "center", CONTRAST_CENTERS)},
    lambda x, p, t: adjust_contrast(x, p["factor"], p["center"]),
    "Contrast up (factor > 1) or down around the image mean or 0.5.")
_op("gamma", {"gamma": (0.7, 1.4)}, lambda rng, r: {"gamma": _num(rng, r["gamma"], "gamma", lo=0, lo_open=True)},
    lambda x, p, t: adjust_gamma(x, p["gamma"]), "x ** gamma.")
_op("brightness", {"delta": (-0.1, 0.1)}, lambda rng, r: {"delta": _num(rng, r["delta"], "delta", -1, 1)},
    lambda x, p, t: adjust_brightness(x, p["delta"]), "x + delta ([0, 1] units).")
_op("sharpen", {"sigma": (0.5, 2.0), "amount": (0.2, 1.0), "threshold": 0.0},
    lambda rng, r: {"sigma": _num(rng, r["sigma"], "sigma", lo=0, lo_open=True),
                    "amount": _num(rng, r["amount"], "amount", lo=0),
                    "threshold": _num(rng, r["threshold"], "threshold", 0, 1)},
    lambda x, p, t: unsharp_mask(x, p["sigma"], p["amount"], p["threshold"]),
    "Unsharp mask: radius `sigma` px, `amount`, `threshold` in [0, 1] units.")
for _name in ("srgb_to_linear", "linear_to_srgb", "bt709_to_linear", "linear_to_bt709"):
    _op(_name, {}, lambda rng, r: {}, (lambda f: lambda x, p, t: f(x))(transfer_curve(_name)),
        f"Transfer curve {_name} (lab.color), no parameters.")
del _name

# geometry on the HR
_op("hr_rescale", {"factor": (0.5, 1.0), "mode": "bicubic"},
    lambda rng, r: {"factor": _num(rng, r["factor"], "factor", lo=0, lo_open=True),
                    "mode": _choice(rng, r["mode"], None, "mode", RESIZE_MODES)},
    lambda x, p, t: rescale_hr(x, p["factor"], p["mode"]),
    "HR op: rescale the HR by `factor` (the LR follows, so structure sizes match the target domain).", hr=True)
_op("hr_aspect", {"aspect": 16 / 9, "strength": 1.0, "method": "stretch", "offset": (0.0, 1.0)},
    lambda rng, r: {"aspect": _num(rng, r["aspect"], "aspect", lo=0, lo_open=True),
                    "strength": _num(rng, r["strength"], "strength", 0, 1),
                    "method": _choice(rng, r["method"], None, "method", ASPECT_METHODS),
                    "offset": _num(rng, r["offset"], "offset", 0, 1)},
    lambda x, p, t: change_aspect(x, p["aspect"], p["strength"], p["method"], p["offset"]),
    "HR op: move the aspect ratio (width / height) toward `aspect` by `strength`, by stretching or cropping.",
    hr=True)
_op("hr_crop", {"height": 96, "width": 96, "y": (0.0, 1.0), "x": (0.0, 1.0)},
    lambda rng, r: {"height": _num(rng, r["height"], "height", lo=1, integer=True),
                    "width": _num(rng, r["width"], "width", lo=1, integer=True),
                    "y": _num(rng, r["y"], "y", 0, 1), "x": _num(rng, r["x"], "x", 0, 1)},
    lambda x, p, t: crop(x, p["height"], p["width"], p["y"], p["x"]),
    "HR op: crop to `height` x `width` px at a random position (y, x as fractions of the free space).", hr=True)
