"""ipywidgets for comparing runs in JupyterLab: a swipe slider with a zoom box, a run picker fed by the ledger, an
epoch scrubber over saved samples. Images are composed here with numpy and sent as PNG bytes to an
`ipywidgets.Image`, so nothing depends on front-end extensions beyond ipywidgets 8. Widgets only read what runs
wrote (outputs, the references their evaluation kept, sample strips), through `lab.runs.Run`.

Under papermill (the runner sets `LAB_PAPERMILL=1` for its kernels) `show` displays a static PNG instead.
"""

from __future__ import annotations

import html
import os
from typing import Any, Callable, Sequence

import cv2
import ipywidgets as W
import numpy as np
import pandas as pd

from lab import infer_records, vocab
from lab.ledger import filter_runs
from lab.plots import first_references, run_outputs
from lab.runs import STATUSES, Run

STATIC_ENVS = (vocab.ENV_PAPERMILL, vocab.ENV_STATIC)
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
        # run titles come from a shared runs folder: text, never markup
        self.caption.value = (f"<span style='color:rgb{A_COLOR}'>A: {html.escape(str(self.a_pick.value))}</span> | "
                              f"<span style='color:rgb{B_COLOR}'>B: {html.escape(str(self.b_pick.value))}</span>")

    def show(self) -> Any:
        """Display it (a static PNG under papermill)."""
        return show(self)


def _option(r: pd.Series) -> tuple[str, int]:
    col = next((c for c in ("metric.set5_psnr_y", "metric.valid_psnr_y") if c in r and not pd.isna(r[c])), None)
    tag = f" [{r['tags']}]" if isinstance(r.get("tags"), str) and r.get("tags") else ""
    qs = f" {col[7:-7]} PSNR-Y {r[col]:.2f} dB" if col else ""
    return f"#{int(r['id'])} {r.get('title') or r['name']} ({r['status']}){qs}{tag}", int(r["id"])


REFERENCE_OPTIONS = (("reference: HR (ground truth)", "ref:hr"), ("reference: baseline (bicubic or the input)",
                                                                  "ref:baseline"), ("reference: LR (nearest)", "ref:lr"))


class RunPicker:
    """Two run dropdowns fed by the ledger, filtered by status and tag; `value` is (id_a, id_b).

    `extra` (label, value) options follow the runs (e.g. references). `on_change(a, b)` is called whenever the
    pair changes.
    """

    def __init__(self, df: pd.DataFrame, status: str = "", tag: str = "",
                 on_change: Callable[[Any, Any], None] | None = None, extra: Sequence[tuple[str, Any]] = ()):
        self.df, self.extra = df, list(extra)
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
        st = None if self.status.value == "(any)" else self.status.value
        return filter_runs(self.df, status=st, tag=self.tag.value.strip() or None)

    def _refresh(self) -> None:
        runs_opts = [_option(r) for _, r in self.filtered().iloc[::-1].iterrows()]
        opts = runs_opts + self.extra
        self._quiet = True
        old = (self.a.value, self.b.value)
        self.a.options = opts
        self.b.options = opts
        ids = [v for _, v in runs_opts] or [v for _, v in opts]
        every = [v for _, v in opts]
        self.a.value = old[0] if old[0] in every else (ids[0] if ids else None)
        self.b.value = old[1] if old[1] in every and old[1] != self.a.value else next(
            (i for i in ids + every if i != self.a.value), self.a.value)
        self._quiet = False
        self._changed()

    def _changed(self, change: Any = None) -> None:
        if not getattr(self, "_quiet", False) and self.on_change is not None:
            self.on_change(*self.value)

    @property
    def value(self) -> tuple[Any, Any]:
        return self.a.value, self.b.value


def eval_images(df: pd.DataFrame, eval_set: str = "valid") -> list[str]:
    """Names of the images whose outputs the runs in `df` saved for set `eval_set` (sorted, union)."""
    names: set[str] = set()
    for p in df.get("path", pd.Series(dtype=object)).dropna():
        names.update(Run(p).eval_images(eval_set) or infer_records.records(Run(p), eval_set))
    return sorted(names)


class CompareRuns:
    """One A/B picker (runs of the ledger, then the references the evaluation kept: HR, baseline, LR) + the image +
    the swipe comparison, wired together: picking reloads the swipe."""

    def __init__(self, df: pd.DataFrame, image: str = "", eval_set: str = "valid", status: str = "", tag: str = "",
                 references: bool = True, **swipe_kw: Any):
        done = df[df["path"].map(lambda p: bool(p) and bool(eval_images(pd.DataFrame({"path": [p]}), eval_set)))]
        names = eval_images(done, eval_set)
        if len(done) < 1 or not names:
            raise FileNotFoundError(f"no run in the ledger saved outputs on set {eval_set!r}; "
                                    "the train notebook writes them when it evaluates (inference runs: set 'infer')")
        self.eval_set, self.references = eval_set, references
        self.df = done
        self.image_pick = W.Dropdown(options=names, value=image if image in names else names[0], description="image")
        self.picker = RunPicker(done, status=status, tag=tag, on_change=self._load,
                                extra=REFERENCE_OPTIONS if references else ())
        self.swipe = SwipeCompare(self._images(), **swipe_kw)
        for pick in (self.swipe.a_pick, self.swipe.b_pick):  # the run picker above is the one A/B choice
            pick.layout.display = "none"
        self.image_pick.observe(lambda _: self._load(*self.picker.value), names="value")
        self.widget = W.VBox([self.picker.widget, self.image_pick, self.swipe.widget])

    def _one(self, choice: Any) -> tuple[str, np.ndarray] | None:
        if isinstance(choice, str) and choice.startswith("ref:"):
            refs = first_references(self.df, self.image_pick.value, self.eval_set)
            kind = choice[4:]
            label = next((k for k in refs if (kind == "hr" and k == "HR") or (kind == "lr" and k.startswith("LR"))
                          or (kind == "baseline" and k not in ("HR",) and not k.startswith("LR"))), None)
            return (label, refs[label]) if label else None
        got = run_outputs(self.df[self.df["id"] == choice], self.image_pick.value, self.eval_set)
        return next(iter(got.items()), None)

    def _images(self) -> dict[str, np.ndarray]:
        pair = [self._one(c) for c in self.picker.value]
        if None in pair or pair[0][0] == pair[1][0]:
            raise FileNotFoundError(f"{self.picker.value} do not give two images to compare for "
                                    f"{self.image_pick.value!r} on set {self.eval_set!r}")
        return dict(pair)

    def _load(self, a: Any, b: Any) -> None:
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


def scrubbable(df: pd.DataFrame) -> str | None:
    """The newest run of `df` with sample strips of more than one epoch (what an epoch scrubber can show)."""
    for p in reversed(list(df.get("path", pd.Series(dtype=object)).dropna())):
        if len(Run(p).samples()) > 1:
            return p
    return None


class EpochScrubber:
    """A slider over a run's saved sample strips (LR | SR | HR), its plain epochs then its adversarial ones."""

    def __init__(self, run_path: str | os.PathLike):
        run = Run(run_path)
        self.files = [s.path for s in run.samples()]
        if not self.files:
            raise FileNotFoundError(f"run {run_path} saved no sample strips; the train notebook saves one per epoch")
        self.slider = W.IntSlider(value=len(self.files) - 1, min=0, max=len(self.files) - 1, description="epoch",
                                  continuous_update=True)
        self.image = W.Image(format="png", value=self.files[-1].read_bytes())
        self.label = W.Label(self.files[-1].name)
        self.slider.observe(self._update, names="value")
        title = html.escape(f"run #{run.id} {run.meta.get('title') or run.name}")
        self.caption = W.HTML(f"<b>{title}</b>: sample strips, left to right LR (input) | SR (output) | HR")
        self.widget = W.VBox([self.caption, W.HBox([self.slider, self.label]), self.image])

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
