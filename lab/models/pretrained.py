"""Import of third-party checkpoints (official IMDN / IMDN-RTC, the common FSRCNN port) and of the lab's own.

`load_pretrained(path)` reads the file with `torch.load(..., weights_only=True)`, recognises the layout from its
keys, rebuilds the matching registered model (so `model.model_name` / `model_kwargs` are set and
`save_checkpoint` works on it), renames keys where the lab's module names differ, and loads strictly: any missing,
unexpected or mis-shaped key is an error that lists them.

Known layouts (after stripping `module.` prefixes left by DataParallel):
- 'imdn': official IMDN (`fea_conv`, `IMDB1..N`, `c`, `LR_conv`, `upsampler`); width, depth, channels and scale
  are read from the weights (the tail has out_ch * scale^2 filters; out_ch is taken equal to in_ch).
- 'imdn_rtc': official IMDN-RTC (`model.0`, `model.1.sub.*`, `model.2`); same inference.
- 'fsrcnn': the FSRCNN port (`first_part`, `mid_part`, `last_part`); d, s, m and channels are read from the
  weights, but the 9x9 deconvolution has the same shape at every scale, so the scale comes from `scale=` or from
  the file name (`..._x3.pth`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from lab.models.checkpoints import load_checkpoint, read_checkpoint
from lab.models.registry import create, list_models

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class _Layout:
    """A third-party checkpoint layout: how to detect it, read kwargs from it and rename its keys."""

    family: str  # the registered model it builds by default
    names: tuple[str, ...]  # registered names that take this layout (kwargs inferred for them)
    detect: Callable[[StateDict], bool]
    infer_kwargs: Callable[[StateDict, Path], dict[str, Any]]
    renames: tuple[tuple[str, Any], ...]  # (regex, replacement str or function) applied in order to each key


def _scale_from_tail(n_out: int, out_ch: int, what: str) -> int:
    r = round((n_out / out_ch) ** 0.5)
    if r * r * out_ch != n_out:
        raise ValueError(f"{what}: tail has {n_out} filters, not out_ch ({out_ch}) x scale^2; pass scale= and out_ch=")
    return r


def _imdn_kwargs(sd: StateDict, path: Path) -> dict[str, Any]:
    head = sd["fea_conv.weight"]
    in_ch = head.shape[1]
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"IMDB(\d+)\.", k))}
    return {"in_ch": in_ch, "out_ch": in_ch, "num_feat": head.shape[0], "num_block": len(blocks),
            "scale": _scale_from_tail(sd["upsampler.0.weight"].shape[0], in_ch, "IMDN checkpoint")}


def _imdn_rtc_kwargs(sd: StateDict, path: Path) -> dict[str, Any]:
    head = sd["model.0.weight"]
    in_ch = head.shape[1]
    subs = {int(m.group(1)) for k in sd if (m := re.match(r"model\.1\.sub\.(\d+)\.c1\.", k))}
    return {"in_ch": in_ch, "out_ch": in_ch, "num_feat": head.shape[0], "num_block": len(subs),
            "scale": _scale_from_tail(sd["model.2.weight"].shape[0], in_ch, "IMDN-RTC checkpoint")}


def _fsrcnn_kwargs(sd: StateDict, path: Path) -> dict[str, Any]:
    first, last = sd["first_part.0.weight"], sd["last_part.weight"]
    convs = [k for k in sd if re.fullmatch(r"mid_part\.\d+\.weight", k) and sd[k].ndim == 4]
    kw: dict[str, Any] = {"in_ch": first.shape[1], "out_ch": last.shape[1], "num_feat": first.shape[0],
                          "shrink": sd["mid_part.0.weight"].shape[0], "num_block": len(convs) - 2}
    m = re.search(r"x(\d+)", path.stem, flags=re.IGNORECASE)
    if m:
        kw["scale"] = int(m.group(1))
    return kw


_LAYOUTS: tuple[_Layout, ...] = (
    _Layout("imdn", ("imdn",),
            lambda sd: "fea_conv.weight" in sd and "IMDB1.c1.weight" in sd,
            _imdn_kwargs,
            ((r"^fea_conv\.", "head."), (r"^IMDB(\d+)\.", lambda m: f"blocks.{int(m.group(1)) - 1}."),
             (r"\.cca\.conv_du\.", ".cca.fc."), (r"^c\.0\.", "fuse.0."), (r"^LR_conv\.", "lr_conv."),
             (r"^upsampler\.", "tail."))),
    _Layout("imdn_rtc", ("imdn_rtc",),
            lambda sd: "model.0.weight" in sd and "model.1.sub.0.c1.weight" in sd,
            _imdn_rtc_kwargs,
            ((r"^model\.0\.", "head."), (r"^model\.1\.sub\.", "body."), (r"^model\.2\.", "tail.0."))),
    _Layout("fsrcnn", ("fsrcnn",),
            lambda sd: "first_part.0.weight" in sd and "last_part.weight" in sd,
            _fsrcnn_kwargs,
            ()),
)

LAYOUTS = tuple(lay.family for lay in _LAYOUTS)


def _as_state_dict(obj: Any, path: Path) -> StateDict:
    """The tensor dict inside a loaded file (bare, or under 'state_dict' / 'params' / 'model'), prefixes stripped."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "params", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{str(path)!r} holds no state dict of tensors (got {type(obj).__name__})")
    return {re.sub(r"^(module\.)+", "", k): v for k, v in obj.items()}


def _rename(sd: StateDict, renames: tuple[tuple[str, Any], ...]) -> StateDict:
    out = {}
    for k, v in sd.items():
        for pattern, repl in renames:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


def _load_strict(model: nn.Module, sd: StateDict, what: str) -> None:
    """load_state_dict(strict=True), with one error that lists every missing, unexpected and mis-shaped key."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def part(title: str, items: list[str]) -> str:
            shown = ", ".join(items[:12]) + (f", ... ({len(items)} in all)" if len(items) > 12 else "")
            return f"\n  {title} ({len(items)}): {shown}" if items else ""

        raise ValueError(f"{what} does not match the model's weights:" + part("missing keys", missing)
                         + part("unexpected keys", unexpected) + part("shape mismatches", shapes))
    model.load_state_dict(sd, strict=True)


def load_pretrained(path: str | os.PathLike, name: str | None = None, **kw: Any) -> nn.Module:
    """Build a model from a checkpoint file: a lab checkpoint, or an official IMDN / IMDN-RTC / FSRCNN state dict.

    `name` picks the registered model (inferred from the keys when None; ValueError lists the names when it
    cannot be); `kw` override the architecture kwargs read from the weights (e.g. `scale=3` for FSRCNN).
    Loading is strict; mismatches raise ValueError listing the keys. The model is returned in eval mode.
    """
    path = Path(path)
    obj = read_checkpoint(path)
    if isinstance(obj, Mapping) and "model_name" in obj and "state_dict" in obj:
        if name is not None and name != obj["model_name"]:
            raise ValueError(f"{str(path)!r} is a lab checkpoint of {obj['model_name']!r}, not {name!r}; "
                             "pass name=None (or the recorded name)")
        if kw:
            raise ValueError(f"{str(path)!r} is a lab checkpoint: it rebuilds from its own model_kwargs "
                             f"{obj.get('model_kwargs', {})}; drop the overrides {sorted(kw)}")
        return load_checkpoint(path)[0].eval()

    sd = _as_state_dict(obj, path)
    layout = next((lay for lay in _LAYOUTS if lay.detect(sd)), None)
    if name is None:
        if layout is None:
            raise ValueError(f"cannot tell the architecture of {str(path)!r} from its keys (recognised layouts: "
                             f"{', '.join(LAYOUTS)}); pass name= one of: {', '.join(list_models())}")
        name = layout.family
    kwargs: dict[str, Any] = {}
    if layout is not None:
        if name in layout.names:
            kwargs = layout.infer_kwargs(sd, path)
        sd = _rename(sd, layout.renames)
    kwargs.update(kw)
    if layout is not None and layout.family == "fsrcnn" and "scale" not in kwargs:
        raise ValueError(f"{str(path)!r}: an FSRCNN checkpoint does not record its scale (the 9x9 deconvolution "
                         "has the same shape at every scale) and the file name has no x<s>; pass scale=2, 3 or 4")
    model = create(name, **kwargs)
    _load_strict(model, sd, f"{str(path)!r} loaded as {name!r} {kwargs}")
    return model.eval()
