"""ipywidgets for comparing runs in JupyterLab: a swipe slider with a zoom box, a run picker fed by the ledger, an
epoch scrubber over saved samples. Images are composed here with numpy and sent as PNG bytes to an
`ipywidgets.Image`, so nothing depends on front-end extensions beyond ipywidgets 8.

Under papermill (the runner sets `LAB_PAPERMILL=1` for its kernels) `show` displays a static PNG instead.
"""

from __future__ import annotations

import math
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from lab.degrade import Pipeline, first_kernel, make_kernel, manual_pipeline

STATIC_ENVS = ("LAB_PAPERMILL", "LAB_STATIC")
A_COLOR = (230, 60, 40)  # divider and zoom frame of image A (red)
B_COLOR = (40, 120, 230)  # zoom frame of image B (blue)


def static_mode() -> bool:
    """True where widgets cannot be interactive: under papermill (LAB_PAPERMILL) or when LAB_STATIC is set."""
    return any(os.environ.get(k, "") not in ("", "0") for k in STATIC_ENVS)


def png_bytes(img: np.ndarray) -> bytes:
    """PNG encoding of an HWC uint8 RGB (or HW gray) image."""

    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"png_bytes expects uint8, got {a.dtype}; convert with lab.images.tensor_to_uint8")
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a))
    if not ok:
        raise ValueError(f"could not encode an image of shape {a.shape} as PNG")
    return buf.tobytes()


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise ValueError(f"expected an HWC uint8 RGB image, got shape {a.shape} dtype {a.dtype}")
    return a[:, :, :3]


def common_size(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The images cropped to their common top-left region (SR outputs and modcropped HR can differ by a pixel)."""
    imgs = [_rgb(i) for i in images]
    h = min(i.shape[0] for i in imgs)
    w = min(i.shape[1] for i in imgs)
    return [i[:h, :w] for i in imgs]


def swipe(a: np.ndarray, b: np.ndarray, pos: float, line: int = 1) -> np.ndarray:
    """Image A left of column `pos * width`, image B right of it, with a `line`-pixel divider.

    Shape: (H, W, 3) uint8 each (cropped to the common size) -> (H, W, 3) uint8.
    """
    if not 0.0 <= pos <= 1.0:
        raise ValueError(f"swipe position {pos} outside [0, 1]")
    a, b = common_size([a, b])
    out = b.copy()
    x = int(round(pos * a.shape[1]))
    out[:, :x] = a[:, :x]
    if line and 0 < x < a.shape[1]:
        lo = max(0, x - line // 2)
        out[:, lo:lo + line] = A_COLOR
    return out


def _frame(img: np.ndarray, y: int, x: int, h: int, w: int, color: tuple[int, int, int], t: int = 1) -> None:
    H, W = img.shape[:2]
    y0, y1, x0, x1 = max(y, 0), min(y + h, H), max(x, 0), min(x + w, W)
    img[y0:min(y0 + t, y1), x0:x1] = color
    img[max(y1 - t, y0):y1, x0:x1] = color
    img[y0:y1, x0:min(x0 + t, x1)] = color
    img[y0:y1, max(x1 - t, x0):x1] = color


def zoom_box(cy: float, cx: float, size: int, shape: Sequence[int]) -> tuple[int, int, int, int]:
    """The (y, x, h, w) box of side `size` centred at fractions (cy, cx) of an image of `shape`, kept inside it."""
    H, W = int(shape[0]), int(shape[1])
    s = max(2, min(int(size), H, W))
    y = int(round(cy * H - s / 2))
    x = int(round(cx * W - s / 2))
    return min(max(y, 0), H - s), min(max(x, 0), W - s), s, s


def compose(a: np.ndarray, b: np.ndarray, pos: float = 0.5, zoom: tuple[float, float, int] | None = None,
            factor: int = 4, max_side: int | None = None) -> np.ndarray:
    """The swipe view of A over B, and with `zoom` (cy, cx, size) a framed box plus a strip below showing that box
    of A and of B magnified `factor` times (nearest neighbour) side by side.

    `max_side` shrinks the swipe view for display (the zoom strip is always cut from full resolution).
    Shape: (H, W, 3) uint8 each -> (H', W', 3) uint8.
    """

    a, b = common_size([a, b])
    view = swipe(a, b, pos)
    if zoom is not None:
        y, x, h, w = zoom_box(zoom[0], zoom[1], zoom[2], a.shape)
        _frame(view, y, x, h, w, (255, 220, 0), t=max(1, a.shape[1] // 300))
    if max_side and max(view.shape[:2]) > max_side:
        f = max_side / max(view.shape[:2])
        view = cv2.resize(view, (max(1, round(view.shape[1] * f)), max(1, round(view.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
    if zoom is None:
        return view
    za = np.repeat(np.repeat(a[y:y + h, x:x + w], factor, 0), factor, 1)
    zb = np.repeat(np.repeat(b[y:y + h, x:x + w], factor, 0), factor, 1)
    _frame(za, 0, 0, *za.shape[:2], A_COLOR, t=2)
    _frame(zb, 0, 0, *zb.shape[:2], B_COLOR, t=2)
    strip = np.concatenate([za, np.full((za.shape[0], 4, 3), 255, np.uint8), zb], axis=1)
    if strip.shape[1] > view.shape[1]:  # fit the strip to the view's width
        f = view.shape[1] / strip.shape[1]
        strip = cv2.resize(strip, (view.shape[1], max(1, round(strip.shape[0] * f))), interpolation=cv2.INTER_NEAREST)
    pad = view.shape[1] - strip.shape[1]
    strip = np.pad(strip, ((4, 0), (pad // 2, pad - pad // 2), (0, 0)), constant_values=255)
    return np.concatenate([view, strip], axis=0)


def show(obj: Any) -> Any:
    """Display a lab widget: interactive in JupyterLab, its static PNG under papermill; returns what was shown."""
    from IPython.display import Image, display

    out = Image(data=obj.static_png(), format="png") if static_mode() else obj.widget
    display(out)
    return out


class SwipeCompare:
    """Swipe between two of several same-size images (runs' outputs, LR/bicubic/HR) with a zoom box.

    `images`: {label: HWC uint8}. `a`, `b`: the labels shown left/right (default: the first two).
    Widgets: `a_pick`, `b_pick` (dropdowns), `slider` (swipe position), `zoom_on`, `zoom_x`, `zoom_y`, `zoom_size`,
    `image` (the ipywidgets.Image), all in `widget`.
    """

    def __init__(self, images: dict[str, np.ndarray], a: str | None = None, b: str | None = None, pos: float = 0.5,
                 zoom: tuple[float, float, int] | None = (0.5, 0.5, 48), factor: int = 4, max_side: int = 640):
        import ipywidgets as W

        self.factor, self.max_side = factor, max_side
        self.images: dict[str, np.ndarray] = {}
        self.a_pick = W.Dropdown(description="A (left)", layout=W.Layout(width="340px"))
        self.b_pick = W.Dropdown(description="B (right)", layout=W.Layout(width="340px"))
        self.slider = W.FloatSlider(value=pos, min=0.0, max=1.0, step=0.01, description="swipe",
                                    continuous_update=True, readout_format=".2f", layout=W.Layout(width="500px"))
        z = zoom or (0.5, 0.5, 48)
        self.zoom_on = W.Checkbox(value=zoom is not None, description="zoom box", indent=False)
        self.zoom_x = W.FloatSlider(value=z[1], min=0, max=1, step=0.01, description="zoom x", continuous_update=False)
        self.zoom_y = W.FloatSlider(value=z[0], min=0, max=1, step=0.01, description="zoom y", continuous_update=False)
        self.zoom_size = W.IntSlider(value=int(z[2]), min=8, max=256, step=4, description="zoom px",
                                     continuous_update=False)
        self.image = W.Image(format="png")
        self.caption = W.HTML()
        self.set_images(images, a, b)
        for w in (self.a_pick, self.b_pick, self.slider, self.zoom_on, self.zoom_x, self.zoom_y, self.zoom_size):
            w.observe(self._update, names="value")
        self.widget = W.VBox([W.HBox([self.a_pick, self.b_pick]), self.slider,
                              W.HBox([self.zoom_on, self.zoom_x, self.zoom_y, self.zoom_size]),
                              self.caption, self.image])
        self.widget.add_class("lab-swipe")
        self._update()

    def set_images(self, images: dict[str, np.ndarray], a: str | None = None, b: str | None = None) -> None:
        """Replace the images (e.g. another pair of runs); `a` / `b` pick the labels shown."""
        if len(images) < 2:
            raise ValueError(f"SwipeCompare needs at least two images, got {list(images)}")
        labels = list(images)
        for name, v in (("a", a), ("b", b)):
            if v is not None and v not in images:
                raise KeyError(f"{name}={v!r} is not among the images {labels}")
        self.images = {k: _rgb(v) for k, v in images.items()}
        a = a or labels[0]
        b = b or next(x for x in labels if x != a)
        self._hold = True
        self.a_pick.options = labels
        self.b_pick.options = labels
        self.a_pick.value, self.b_pick.value = a, b
        self._hold = False
        self._update()

    def render(self) -> np.ndarray:
        """The current view as an HWC uint8 array."""
        zoom = (self.zoom_y.value, self.zoom_x.value, self.zoom_size.value) if self.zoom_on.value else None
        return compose(self.images[self.a_pick.value], self.images[self.b_pick.value], self.slider.value, zoom,
                       self.factor, self.max_side)

    def static_png(self) -> bytes:
        """PNG of the current view (what papermill runs keep)."""
        return png_bytes(self.render())

    def _update(self, change: Any = None) -> None:
        if getattr(self, "_hold", False) or not self.images:
            return
        self.image.value = self.static_png()
        self.caption.value = (f"<span style='color:rgb{A_COLOR}'>A: {self.a_pick.value}</span> | "
                              f"<span style='color:rgb{B_COLOR}'>B: {self.b_pick.value}</span>")

    def show(self) -> Any:
        """Display it (a static PNG under papermill)."""
        return show(self)


def _option(r: pd.Series) -> tuple[str, int]:
    q = next((r[c] for c in ("metric.set5_psnr_y", "metric.valid_psnr_y") if c in r and not pd.isna(r[c])), None)
    tag = f" [{r['tags']}]" if isinstance(r.get("tags"), str) and r.get("tags") else ""
    qs = f" {q:.2f} dB" if q is not None else ""
    return f"#{int(r['id'])} {r.get('title') or r['name']} ({r['status']}){qs}{tag}", int(r["id"])


class RunPicker:
    """Two run dropdowns fed by the ledger, filtered by status and tag; `value` is (id_a, id_b).

    `on_change(id_a, id_b)` is called whenever the pair changes.
    """

    def __init__(self, df: pd.DataFrame, status: str = "", tag: str = "",
                 on_change: Callable[[int | None, int | None], None] | None = None):
        import ipywidgets as W

        from lab.runs import STATUSES

        self.df = df
        self.on_change = on_change
        self.status = W.Dropdown(options=["(any)", *STATUSES], value=status or "(any)", description="status")
        tags = sorted({t.strip() for s in df.get("tags", pd.Series(dtype=object)).dropna() for t in s.split(",")})
        self.tag = W.Combobox(value=tag, options=tags, placeholder="tag", description="tag", ensure_option=False)
        self.a = W.Dropdown(description="run A", layout=W.Layout(width="420px"))
        self.b = W.Dropdown(description="run B", layout=W.Layout(width="420px"))
        self.widget = W.VBox([W.HBox([self.status, self.tag]), self.a, self.b])
        self._refresh()
        self.status.observe(lambda _: self._refresh(), names="value")
        self.tag.observe(lambda _: self._refresh(), names="value")
        self.a.observe(self._changed, names="value")
        self.b.observe(self._changed, names="value")

    def filtered(self) -> pd.DataFrame:
        """The ledger rows the filters keep."""
        from lab.ledger import filter_runs

        st = None if self.status.value == "(any)" else self.status.value
        return filter_runs(self.df, status=st, tag=self.tag.value.strip() or None)

    def _refresh(self) -> None:
        opts = [_option(r) for _, r in self.filtered().iloc[::-1].iterrows()]
        self._quiet = True
        old = (self.a.value, self.b.value)
        self.a.options = opts
        self.b.options = opts
        ids = [v for _, v in opts]
        self.a.value = old[0] if old[0] in ids else (ids[0] if ids else None)
        self.b.value = old[1] if old[1] in ids and old[1] != self.a.value else next(
            (i for i in ids if i != self.a.value), self.a.value)
        self._quiet = False
        self._changed()

    def _changed(self, change: Any = None) -> None:
        if not getattr(self, "_quiet", False) and self.on_change is not None:
            self.on_change(*self.value)

    @property
    def value(self) -> tuple[int | None, int | None]:
        return self.a.value, self.b.value


def run_images(df: pd.DataFrame, ids: Sequence[int], image: str, eval_set: str = "valid",
               references: bool = True) -> dict[str, np.ndarray]:
    """{label: image} for a comparison: the runs' saved outputs of `image`, then bicubic / HR / LR when found."""
    from lab.plots import reference_images, run_outputs

    rows = df[df["id"].isin(list(ids))]
    rows = rows.set_index("id").loc[[i for i in ids if i in set(rows["id"])]].reset_index()
    imgs = run_outputs(rows, image, eval_set)
    if references and not rows.empty and imgs:
        r0 = rows.iloc[0]
        scale = int(r0.get("param.scale", 2) or 2)
        size = next(iter(imgs.values())).shape[:2]
        imgs.update(reference_images(image, eval_set, scale, size, valid=r0.get("param.valid")))
    return imgs


def eval_images(df: pd.DataFrame, eval_set: str = "valid") -> list[str]:
    """Names of the images the runs in `df` saved under `eval/<eval_set>/` (sorted, union)."""
    names: set[str] = set()
    for p in df.get("path", pd.Series(dtype=object)).dropna():
        d = Path(p) / "eval" / eval_set
        if d.is_dir():
            names.update(q.stem for q in d.glob("*.png"))
    return sorted(names)


class CompareRuns:
    """Run picker + image choice + swipe comparison, wired together: picking runs reloads the swipe images."""

    def __init__(self, df: pd.DataFrame, image: str = "", eval_set: str = "valid", status: str = "", tag: str = "",
                 references: bool = True, **swipe_kw: Any):
        import ipywidgets as W

        done = df[df["path"].map(lambda p: bool(p) and (Path(p) / "eval" / eval_set).is_dir())]
        names = eval_images(done, eval_set)
        if len(done) < 1 or not names:
            raise FileNotFoundError(f"no run in the ledger saved images under eval/{eval_set}/; "
                                    "the train notebook writes them when it evaluates")
        self.eval_set, self.references = eval_set, references
        self.df = done
        self.image_pick = W.Dropdown(options=names, value=image if image in names else names[0], description="image")
        self.picker = RunPicker(done, status=status, tag=tag, on_change=self._load)
        imgs = self._images()
        self.swipe = SwipeCompare(imgs, **swipe_kw)
        self.image_pick.observe(lambda _: self._load(*self.picker.value), names="value")
        self.widget = W.VBox([self.picker.widget, self.image_pick, self.swipe.widget])

    def _images(self) -> dict[str, np.ndarray]:
        a, b = self.picker.value
        ids = [i for i in dict.fromkeys([a, b]) if i is not None]
        imgs = run_images(self.df, ids, self.image_pick.value, self.eval_set, self.references)
        if len(imgs) < 2:
            raise FileNotFoundError(f"runs {ids} have fewer than two images to compare for "
                                    f"{self.image_pick.value!r} in eval/{self.eval_set}/")
        return imgs

    def _load(self, a: int | None, b: int | None) -> None:
        if not hasattr(self, "swipe"):
            return
        try:
            imgs = self._images()
        except FileNotFoundError:
            return
        labels = list(imgs)
        self.swipe.set_images(imgs, labels[0], labels[1])

    def static_png(self) -> bytes:
        """PNG of the current swipe view."""
        return self.swipe.static_png()

    def show(self) -> Any:
        """Display it (a static PNG under papermill)."""
        return show(self)


class EpochScrubber:
    """A slider over a run's saved sample strips (`samples/epoch_NNN.png`, LR | SR | HR)."""

    def __init__(self, run_path: str | os.PathLike):
        import ipywidgets as W

        from lab.plots import samples

        self.files = samples(run_path)
        if not self.files:
            raise FileNotFoundError(f"no samples/epoch_*.png in {run_path}; the train notebook saves one per epoch")
        self.slider = W.IntSlider(value=len(self.files) - 1, min=0, max=len(self.files) - 1, description="epoch",
                                  continuous_update=True)
        self.image = W.Image(format="png", value=self.files[-1].read_bytes())
        self.label = W.Label(self.files[-1].name)
        self.slider.observe(self._update, names="value")
        self.widget = W.VBox([W.HBox([self.slider, self.label]), self.image])

    def _update(self, change: Any = None) -> None:
        f = self.files[self.slider.value]
        self.image.value = f.read_bytes()
        self.label.value = f.name

    def static_png(self) -> bytes:
        """PNG of the last epoch's strip."""
        return self.files[-1].read_bytes()

    def show(self) -> Any:
        """Display it (a static PNG under papermill)."""
        return show(self)


# ------------------------------------------------------------------------------------------ degradation explorer
# Sliders over lab.degrade.manual_pipeline with a live LR | kernel | HR preview, preset draws, a kernel gallery.

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


class DegradationExplorer:
    """Sliders (blur sigma, anisotropy, kernel angle, noise, JPEG quality, scale, contrast) over one HR image with a
    live side-by-side preview (HR | degraded, nearest-upscaled), the kernel and a zoomed crop; `static_png()` draws
    fixed sweeps of the same controls, draws of `pipeline` and the kernel families (for papermill).
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
        self.settings.update(settings)

    def degrade(self, pipe: Pipeline, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(LR uint8 HWC, first kernel or None, HR used (cropped to a multiple of scale)) for one pipeline draw."""
        from lab.images import tensor_to_uint8, uint8_to_tensor

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
        import ipywidgets as W


        st = self.settings
        self.sliders = {
            "blur_sigma": W.FloatSlider(value=st["blur_sigma"], min=0, max=4, step=0.1, description="blur sigma"),
            "blur_ratio": W.FloatSlider(value=st["blur_ratio"], min=0.2, max=1, step=0.05, description="anisotropy"),
            "blur_angle": W.FloatSlider(value=st["blur_angle"], min=0, max=180, step=5, description="kernel angle"),
            "noise_255": W.FloatSlider(value=st["noise_255"], min=0, max=50, step=1, description="noise /255"),
            "jpeg_quality": W.IntSlider(value=st["jpeg_quality"], min=5, max=100, step=1, description="JPEG (100 off)"),
            "scale": W.IntSlider(value=st["scale"], min=1, max=4, step=1, description="scale"),
            "contrast": W.FloatSlider(value=st["contrast"], min=0.5, max=1.5, step=0.05, description="contrast"),
        }
        self.image = W.Image(value=png_bytes(self.panel()), format="png")

        def update(change: Any = None) -> None:
            self.settings.update({k: s.value for k, s in self.sliders.items()})
            self.image.value = png_bytes(self.panel())

        for s in self.sliders.values():
            s.continuous_update = False  # one redraw per release: a redraw takes ~0.1 s on CPU
            s.observe(update, names="value")
        return W.HBox([W.VBox(list(self.sliders.values())), self.image])
