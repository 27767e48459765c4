"""The degradations explorer: sliders (blur sigma, anisotropy, kernel angle, noise, JPEG quality, scale, contrast)
over one HR image with a live preview, draws of a preset with their kernels, and a gallery of kernel families;
under papermill the same comparisons as a static grid."""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import cv2
import ipywidgets as W
import numpy as np

from lab.data import builtin_image
from lab.degrade import Pipeline, build, make_kernel
from lab.images import read_image, tensor_to_uint8, uint8_to_tensor
from lab.widgets import png_bytes


def load_image(image: str, size: int = 0) -> np.ndarray:
    """A built-in photo by name (astronaut, coffee, chelsea, ...) or an image file, centre-cropped to `size` px
    when it is larger (0: whole). Shape: -> (H, W, 3) uint8."""
    hr = read_image(image) if Path(image).is_file() else builtin_image(image)
    if size and min(hr.shape[:2]) > size:
        y, x = (hr.shape[0] - size) // 2, (hr.shape[1] - size) // 2
        hr = np.ascontiguousarray(hr[y:y + size, x:x + size])
    return hr


def manual_pipeline(scale: int = 2, blur_sigma: float = 1.0, blur_ratio: float = 1.0, blur_angle: float = 0.0,
                    noise_255: float = 5.0, jpeg_quality: int = 100, contrast: float = 1.0) -> Pipeline:
    """A fixed pipeline from slider values: contrast -> Gaussian blur -> bicubic down -> Gaussian noise -> JPEG.

    blur_sigma 0, noise_255 0, contrast 1 and jpeg_quality 100 switch that step off; `blur_ratio` = sigma_y / sigma_x.
    """
    steps: list[list[Any]] = [["contrast", {"factor": float(contrast)}, 0.0 if contrast == 1 else 1.0],
                              ["gaussian_blur", {"sigma": max(float(blur_sigma), 1e-3),
                                                 "sigma_y": max(float(blur_sigma) * float(blur_ratio), 1e-3),
                                                 "angle": float(blur_angle)}, 1.0 if blur_sigma > 0 else 0.0],
                              ["downscale", {"mode": "bicubic"}, 1.0],
                              ["gaussian_noise", {"sigma_255": float(noise_255)}, 1.0 if noise_255 > 0 else 0.0],
                              ["jpeg", {"quality": int(min(jpeg_quality, 100))}, 1.0 if jpeg_quality < 100 else 0.0]]
    return build({"preset": "manual", "steps": steps}, scale=scale)


def first_kernel(pipe: Pipeline, params: dict[str, Any]) -> np.ndarray | None:
    """The first blur kernel a params dict applies (None if no blur ran). Shape: () -> (k, k) float32."""
    for sp in params["stages"]:
        for p in sp["steps"].values():
            if sp["apply"] and isinstance(p, dict) and "kernel" in p:
                return make_kernel(p["kernel"])
    return None



def _label(img: np.ndarray, text: str) -> np.ndarray:
    """The image with a white caption strip above it."""
    strip = np.full((16, img.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text[: max(1, img.shape[1] // 7)], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([strip, img], axis=0)


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize to (h, w) (keeps pixels visible), gray -> RGB."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)


def kernel_image(k: np.ndarray | None, side: int = 96) -> np.ndarray:
    """A kernel drawn as a magma-like heat map (max = bright), nearest-upscaled. Shape: (k, k) -> (side, side, 3)."""
    if k is None:
        k = np.zeros((1, 1), np.float32)
    v = np.clip(k / max(float(k.max()), 1e-12), 0, 1)
    heat = cv2.applyColorMap((v * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)[:, :, ::-1]
    return _fit(np.ascontiguousarray(heat), side, side)


def grid(rows: Sequence[Sequence[tuple[str, np.ndarray]]], pad: int = 4) -> np.ndarray:
    """Labelled tiles (HWC uint8, any sizes) laid out in rows on white. Shape: -> (H, W, 3) uint8."""
    lines = []
    for row in rows:
        tiles = [_label(_fit(img, img.shape[0], img.shape[1]), lbl) for lbl, img in row]
        h = max(t.shape[0] for t in tiles)
        tiles = [np.pad(t, ((0, h - t.shape[0]), (0, pad), (0, 0)), constant_values=255) for t in tiles]
        lines.append(np.concatenate(tiles, axis=1))
    w = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, pad), (0, w - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    return np.concatenate(lines, axis=0)


def kernel_gallery(side: int = 128) -> np.ndarray:
    """One example kernel of each family, drawn as heat maps in a labelled row. Shape: -> (H, W, 3) uint8."""
    examples = [("gaussian iso", {"type": "gaussian", "size": 21, "sigma_x": 2.5}),
                ("gaussian aniso", {"type": "gaussian", "size": 21, "sigma_x": 3.5, "sigma_y": 1.0, "angle": 30}),
                ("generalized b=0.5", {"type": "generalized", "size": 21, "sigma_x": 2.5, "sigma_y": 1.5,
                                       "angle": 60, "beta": 0.5}),
                ("plateau b=2", {"type": "plateau", "size": 21, "sigma_x": 2.5, "sigma_y": 2.5, "angle": 0,
                                 "beta": 2.0}),
                ("motion line", {"type": "motion_line", "length": 15, "angle": 20, "size": 21}),
                ("motion shake", {"type": "motion_trajectory", "length": 15, "seed": 3, "jitter": 0.4, "size": 21}),
                ("defocus disk", {"type": "disk", "radius": 6, "size": 21}),
                ("sinc pi/4", {"type": "sinc", "size": 21, "omega": math.pi / 4})]
    return grid([[(lbl, kernel_image(make_kernel(spec), side)) for lbl, spec in examples[:4]],
                 [(lbl, kernel_image(make_kernel(spec), side)) for lbl, spec in examples[4:]]])


def _mid(r: Any) -> float | None:
    """The middle of a range (lo, hi), a fixed number as is, None for anything else."""
    if isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(v, (int, float)) for v in r):
        return (float(r[0]) + float(r[1])) / 2
    return float(r) if isinstance(r, (int, float)) and not isinstance(r, bool) else None


def settings_from(pipeline: Pipeline) -> dict[str, Any]:
    """Slider settings that show what `pipeline` does: the middle of its blur, noise, JPEG and contrast ranges, and
    each of those off when the pipeline has no such step."""
    cfg = pipeline.config()
    steps = [st for stage in cfg["stages"] for block in stage["blocks"] for st in block]
    out: dict[str, Any] = {"blur_sigma": 0.0, "noise_255": 0.0, "jpeg_quality": 100, "contrast": 1.0,
                           "scale": int(pipeline.scale) if isinstance(pipeline.scale, int) else 2}
    for st in steps:
        r = st["ranges"]
        if st["op"] in ("gaussian_blur", "blur") and _mid(r.get("sigma")) is not None and not out["blur_sigma"]:
            out["blur_sigma"] = round(_mid(r["sigma"]), 1)
            if st["op"] == "gaussian_blur" and _mid(r.get("sigma_y")) is not None:
                out["blur_ratio"] = round(min(1.0, _mid(r["sigma_y"]) / max(_mid(r["sigma"]), 1e-3)), 2)
        elif st["op"] in ("gaussian_noise", "noise") and not out["noise_255"]:
            v = _mid(r.get("sigma_255")) if r.get("sigma_255") is not None else (_mid(r.get("sigma")) or 0) * 255
            out["noise_255"] = round(v or 0.0)
        elif st["op"] == "jpeg" and out["jpeg_quality"] == 100 and _mid(r.get("quality")) is not None:
            out["jpeg_quality"] = int(round(_mid(r["quality"])))
        elif st["op"] == "contrast" and _mid(r.get("factor")) is not None:
            out["contrast"] = round(_mid(r["factor"]), 2)
    return out


class DegradationExplorer:
    """Sliders (blur sigma, anisotropy, kernel angle, noise, JPEG quality, scale, contrast) over one HR image with a
    live side-by-side preview (HR | degraded, nearest-upscaled), the kernel and a zoomed crop; `static_png()` draws
    fixed sweeps of the same controls, draws of `pipeline` and the kernel families (for papermill). With a
    `pipeline` the sliders start where it degrades (`settings_from`); `settings` override.
    Show it with `lab.widgets.show(explorer)`.
    """

    SWEEPS = {"blur_sigma": [0.0, 1.0, 2.0, 3.0], "noise_255": [0.0, 10.0, 25.0, 50.0],
              "jpeg_quality": [100, 50, 20, 10], "contrast": [0.6, 1.0, 1.4]}
    LABELS = {"blur_sigma": "blur sigma", "noise_255": "noise/255", "jpeg_quality": "JPEG q", "contrast": "contrast"}

    def __init__(self, hr: np.ndarray, scale: int = 2, seed: int = 0, zoom: float = 0.25,
                 pipeline: Pipeline | None = None, **settings: Any):
        if not isinstance(hr, np.ndarray) or hr.ndim != 3 or hr.shape[2] != 3 or hr.dtype != np.uint8:
            raise ValueError(f"expected an HWC uint8 RGB image, got {getattr(hr, 'shape', type(hr).__name__)}")
        if not 0 < zoom <= 1:
            raise ValueError(f"zoom (fraction of the image side shown magnified) must be in (0, 1], got {zoom}")
        self.hr, self.seed, self.zoom, self.pipeline = hr, int(seed), float(zoom), pipeline
        self.settings = {"scale": int(scale), "blur_sigma": 1.0, "blur_ratio": 1.0, "blur_angle": 0.0,
                         "noise_255": 5.0, "jpeg_quality": 75, "contrast": 1.0}
        unknown = set(settings) - set(self.settings)
        if unknown:
            raise KeyError(f"unknown explorer setting {sorted(unknown)[0]!r}; known: {list(self.settings)}")
        if pipeline is not None:
            self.settings.update({**settings_from(pipeline), "scale": int(scale)})
        self.settings.update(settings)

    def degrade(self, pipe: Pipeline, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(LR uint8 HWC, first kernel or None, HR used (cropped to a multiple of scale)) for one pipeline draw."""
        s = pipe.scale if isinstance(pipe.scale, int) else 1
        hr = self.hr[: self.hr.shape[0] - self.hr.shape[0] % s, : self.hr.shape[1] - self.hr.shape[1] % s]
        params = pipe.sample(np.random.default_rng(self.seed if seed is None else seed))
        lr = pipe.apply(uint8_to_tensor(hr), params)
        return tensor_to_uint8(lr), first_kernel(pipe, params), hr

    def _zoom(self, img: np.ndarray, side: int = 0) -> np.ndarray:
        """The centre crop (`zoom` of each side), nearest-magnified by an integer factor to at least `side` px."""
        h, w = img.shape[:2]
        zh, zw = max(2, int(h * self.zoom)), max(2, int(w * self.zoom))
        y, x = (h - zh) // 2, (w - zw) // 2
        f = max(1, math.ceil(side / min(zh, zw)))
        return _fit(img[y:y + zh, x:x + zw], zh * f, zw * f)

    def panel(self, **settings: Any) -> np.ndarray:
        """HR | degraded (nearest-upscaled) on top; zoomed crops and the kernel below. Shape: -> (H, W, 3) uint8."""
        st = {**self.settings, **settings}
        lr, k, hr = self.degrade(manual_pipeline(**st))
        up = _fit(lr, *hr.shape[:2])
        z = self._zoom(hr)
        zh = max(64, min(256, hr.shape[0] // 2))
        zw = max(1, round(zh * z.shape[1] / z.shape[0]))
        return grid([[("HR", hr), (f"degraded x{st['scale']} (nearest up)", up)],
                     [("HR zoom", _fit(z, zh, zw)), ("degraded zoom", _fit(self._zoom(up), zh, zw)),
                      ("kernel", kernel_image(k, zh))]])

    def sweep_grid(self) -> np.ndarray:
        """Zoomed crops for a sweep of each control, the others at their current settings. Shape: -> (H, W, 3)."""
        rows = []
        for key, values in self.SWEEPS.items():
            row = [("HR", self._zoom(self.hr, 128))]
            for v in values:
                lr, _, hr = self.degrade(manual_pipeline(**{**self.settings, key: v}))
                row.append((f"{self.LABELS[key]} {v:g}", self._zoom(_fit(lr, *hr.shape[:2]), 128)))
            rows.append(row)
        return grid(rows)

    def sample_grid(self, samples: int = 4) -> np.ndarray:
        """Zoomed crops of `samples` draws of `pipeline` (seeds seed, seed + 1, ...) and their first kernels."""
        if self.pipeline is None:
            raise ValueError("no pipeline to sample: pass pipeline=lab.degrade.build(...)")
        draws = [self.degrade(self.pipeline, seed=self.seed + i) for i in range(samples)]
        row = [(f"{self.pipeline.name} #{i}", self._zoom(_fit(lr, *hr.shape[:2]), 128)) for i, (lr, _, hr) in
               enumerate(draws)]
        side = row[0][1].shape[0]
        return grid([[("HR", self._zoom(self.hr, 128))] + row,
                     [("", np.full((side, side, 3), 255, np.uint8))] +
                     [(f"kernel #{i}" if k is not None else "no blur", kernel_image(k, side))
                      for i, (_, k, _) in enumerate(draws)]])

    def static_grid(self, samples: int = 4) -> np.ndarray:
        """The sweeps, the pipeline's draws (if any) and the kernel families, stacked. Shape: -> (H, W, 3) uint8."""
        parts = [self.sweep_grid()] + ([self.sample_grid(samples)] if self.pipeline is not None else [])
        parts.append(kernel_gallery())
        w = max(p.shape[1] for p in parts)
        return np.concatenate([np.pad(p, ((0, 8), (0, w - p.shape[1]), (0, 0)), constant_values=255)
                               for p in parts], axis=0)

    def static_png(self) -> bytes:
        """PNG bytes of `static_grid()`."""

        return png_bytes(self.static_grid())

    @cached_property
    def widget(self) -> Any:
        """The ipywidgets UI: sliders and a live PNG preview (built on first access)."""
        st = self.settings
        kw = {"style": {"description_width": "110px"}, "layout": W.Layout(width="380px")}  # labels fit whole
        self.sliders = {
            "blur_sigma": W.FloatSlider(value=st["blur_sigma"], min=0, max=4, step=0.1, description="blur sigma", **kw),
            "blur_ratio": W.FloatSlider(value=st["blur_ratio"], min=0.2, max=1, step=0.05, description="anisotropy",
                                        **kw),
            "blur_angle": W.FloatSlider(value=st["blur_angle"], min=0, max=180, step=5, description="kernel angle",
                                        **kw),
            "noise_255": W.FloatSlider(value=st["noise_255"], min=0, max=50, step=1, description="noise (/255)", **kw),
            "jpeg_quality": W.IntSlider(value=st["jpeg_quality"], min=5, max=100, step=1,
                                        description="JPEG q (100 off)", **kw),
            "scale": W.IntSlider(value=st["scale"], min=1, max=4, step=1, description="scale", **kw),
            "contrast": W.FloatSlider(value=st["contrast"], min=0.5, max=1.5, step=0.05, description="contrast", **kw),
        }
        self.image = W.Image(value=png_bytes(self.panel()), format="png")

        def update(change: Any = None) -> None:
            self.settings.update({k: s.value for k, s in self.sliders.items()})
            self.image.value = png_bytes(self.panel())

        for s in self.sliders.values():
            s.continuous_update = False  # one redraw per release: a redraw takes ~0.1 s on CPU
            s.observe(update, names="value")
        return W.HBox([W.VBox(list(self.sliders.values())), self.image])
