"""Inference: full-image or tiled prediction, reflection padding, x8 self-ensemble, optional post-processing.

One entry point, `infer(model, lr, ...)`, for RGB models and Y-channel models alike. Tiled inference streams tiles:
the input stays where it is (normally the CPU), each tile goes to the model's device and back, and the output is
accumulated on the CPU, so a large image never sits whole on the accelerator.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from fastprogress.fastprogress import progress_bar
from torch import nn

from lab import vocab
from lab.color import rgb_to_ycbcr, ycbcr_to_rgb
from lab.images import check_image_tensor
from lab.registry import Registry
from lab.resize import imresize_tensor

POST_OPS = ("nlm", "autocontrast", "dither")
AMP_DTYPES = {p: None if p == "fp32" else getattr(torch, t) for p, t in vocab.TORCH_DTYPES.items()}  # None: no autocast
PROGRESS_MIN_TILES = 16  # show a progress bar from this many tiles on (progress=None)

Fn = Callable[[torch.Tensor], torch.Tensor]


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device a notebook's `device` parameter names: 'auto' is CUDA when visible, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES[1:]:
        raise ValueError(f"unknown device {device!r}; accepted: {', '.join(DEVICES)} (or cuda:<n>)")
    return torch.device(device)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    if p is None:
        p = next(model.buffers(), None)
    return p.device if p is not None else torch.device("cpu")


def reflect_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom and right by reflection so H and W are multiples of `multiple` (replicate if the image is smaller
    than the padding, where reflection is undefined).

    Shape: (B, C, H, W) -> (B, C, ceil(H / m) * m, ceil(W / m) * m).
    """
    if multiple < 1:
        raise ValueError(f"pad_to={multiple!r}: expected an int >= 1")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _integer_scale(in_hw: Sequence[int], out_hw: Sequence[int]) -> int:
    """The model's integer upscaling factor from one input/output pair; ValueError if it is not one."""
    (h, w), (oh, ow) = in_hw, out_hw
    if oh % h or ow % w or oh // h != ow // w:
        raise ValueError(f"the model maps {h}x{w} to {oh}x{ow}; infer needs the same integer scale on both axes")
    return oh // h


def padded(fn: Fn, pad_to: int) -> Fn:
    """Wrap `fn` so its input is reflection-padded to a multiple of `pad_to` and the output cropped back."""
    if pad_to == 1:
        return fn

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = reflect_pad(x, pad_to)
        y = fn(xp)
        s = _integer_scale(xp.shape[-2:], y.shape[-2:])
        return y[..., : h * s, : w * s]

    return run


def ensemble_x8(fn: Fn, x: torch.Tensor) -> torch.Tensor:
    """x8 self-ensemble (Timofte et al., CVPR 2016; EDSR): run `fn` on the 4 rotations x 2 flips, undo each, average.

    Runs the 8 passes one after another, so memory stays that of one pass.
    Shape: (B, C, H, W) -> whatever `fn` returns for it.
    """
    acc = None
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in range(4):
            y = fn(torch.rot90(xf, k, dims=(-2, -1)))
            y = torch.rot90(y, -k, dims=(-2, -1))
            y = (y.flip(-1) if flip else y).float()
            acc = y if acc is None else acc + y
    return acc / 8


_RF_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[float, int]]" = weakref.WeakKeyDictionary()


GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def receptive_field(model: nn.Module, tol: float = 1e-5, start: int = 32, max_size: int = 256, seed: int = 0) -> int:
    """Radius, in input pixels, of the neighbourhood that decides the model's output at a pixel: the smallest r
    such that every input pixel farther than r (Chebyshev distance) together moves that output by at most `tol`
    per unit of input change (the summed |gradient| of a centre output block outside the radius, on a random
    input), plus one pixel of margin. For plain conv stacks this is the structural receptive field; for networks
    with global paths (channel attention pools the whole image: `GLOBAL_POOLS`) the gradient through those pools
    is left out, since no finite context reproduces a whole-image statistic: their tiles differ from untiled
    inference by how a tile's channel statistics differ from the image's (`lab bench P5` measures it).
    The input grows from `start` until the radius is resolved inside it (at most `max_size`). Cached per model.
    Tiled inference with this much context per tile matches untiled inference to about `tol` (`lab.infer.tiled`).
    """
    hit = _RF_CACHE.get(model)
    if hit is not None and hit[0] == tol:
        return hit[1]
    dev = next(iter(model.parameters()), torch.empty(0)).device
    in_ch = getattr(model, "in_ch", 3)
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    n = start
    cut = [m.register_forward_hook(lambda mod, inp, out: out.detach()) for m in model.modules()
           if isinstance(m, GLOBAL_POOLS) or getattr(m, "global_pool", False)]
    try:
        while True:
            x = torch.rand(1, in_ch, n, n, generator=g).to(dev).requires_grad_(True)
            with torch.enable_grad():
                y = model(x)
                s = max(1, y.shape[-1] // n)
                c = n // 2
                block = y[..., c * s:(c + 1) * s, c * s:(c + 1) * s]
                signs = torch.randint(0, 2, block.shape, generator=g).to(dev) * 2.0 - 1.0
                (grad,) = torch.autograd.grad((block * signs).sum(), x)
            infl = grad.abs().sum(1)[0].double().cpu()
            idx = torch.arange(n)
            dist = torch.maximum((idx[:, None] - c).abs(), (idx[None, :] - c).abs())
            per_ring = torch.zeros(n, dtype=torch.float64).index_add_(0, dist.flatten(), infl.flatten())
            outside = per_ring.flip(0).cumsum(0).flip(0)  # outside[r] = influence at distance >= r
            r = int((outside > tol).nonzero().max()) if bool((outside > tol).any()) else 0
            if r < n // 2 - 1 or n >= max_size:
                break
            n *= 2
    finally:
        model.train(was_training)
        for h in cut:
            h.remove()
    radius = r + 1
    _RF_CACHE[model] = (tol, radius)
    return radius


def _windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Along one axis: (core start, core end, window start) of each tile; cores tile the axis without overlap and
    each window (`tile` long, or the whole axis) holds its core plus `overlap` px of context on each inner side."""
    if length <= tile:
        return [(0, length, 0)]
    core = tile - 2 * overlap
    out = []
    for c0 in range(0, length, core):
        c1 = min(c0 + core, length)
        out.append((c0, c1, min(max(c0 - overlap, 0), length - tile)))
    return out


def tiled(fn: Fn, x: torch.Tensor, tile: int | tuple[int, int], overlap: int = 16, *,
          progress: bool | None = None, out_device: str | torch.device = "cpu") -> torch.Tensor:
    """Apply `fn` tile by tile: each tile (`tile` LR px, what the model sees at once) carries `overlap` px of real
    image context around its core, and only the core's output is kept, so every output pixel is computed from at
    least `overlap` px of true neighbourhood on each side. With `overlap` >= the model's receptive-field radius
    (`receptive_field`, the default of `infer`) the result equals untiled inference (to float
    rounding; networks with global paths to their tolerance): no seams, no blending.
    `fn` gets each tile where `x` is and its output is moved to `out_device`, where the result is assembled.
    Shape: (B, C, H, W) -> (B, C', H * s, W * s), s the model's integer scale.
    """
    th, tw = (tile, tile) if isinstance(tile, int) else tuple(tile)
    if overlap < 0 or th <= 2 * overlap or tw <= 2 * overlap:
        raise ValueError(f"tile={tile!r}, tile_overlap={overlap!r}: expected 0 <= overlap and tile > 2 * overlap "
                         f"(each tile holds its core plus the overlap on both sides); raise tile to at least "
                         f"{2 * overlap + 16}")
    _, _, h, w = x.shape
    positions = [(ry, rx) for ry in _windows(h, th, overlap) for rx in _windows(w, tw, overlap)]
    show = len(positions) >= PROGRESS_MIN_TILES if progress is None else progress
    if show:
        positions = progress_bar(positions, leave=False)
    out = None
    scale = 1
    for (y0, y1, wy), (x0, x1, wx) in positions:
        win = x[..., wy:wy + min(th, h), wx:wx + min(tw, w)]
        y = fn(win).float().to(out_device)
        if out is None:
            scale = _integer_scale(win.shape[-2:], y.shape[-2:])
            out = torch.zeros(y.shape[0], y.shape[1], h * scale, w * scale, device=out_device)
        s = scale
        out[..., y0 * s:y1 * s, x0 * s:x1 * s] = y[..., (y0 - wy) * s:(y1 - wy) * s, (x0 - wx) * s:(x1 - wx) * s]
    return out


def nlm_denoise(x: torch.Tensor, h: float = 3.0, h_color: float = 3.0, template: int = 7,
                search: int = 21) -> torch.Tensor:
    """OpenCV non-local means on the 8-bit image (cv2.fastNlMeansDenoisingColored; 1 channel: the gray version).

    `h`, `h_color`: filter strengths on the 0-255 scale (luma, colour). The result lies on the 8-bit grid.
    Shape: (B, 3 or 1, H, W) in [0, 1] -> same shape, float32 in [0, 1].
    """
    import cv2

    if x.shape[1] not in (1, 3):
        raise ValueError(f"nlm works on 1 or 3 channels, got {x.shape[1]}")
    outs = []
    for img in x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy():
        hwc = np.ascontiguousarray(img.transpose(1, 2, 0))
        if hwc.shape[2] == 3:
            bgr = np.ascontiguousarray(hwc[:, :, ::-1])
            den = cv2.fastNlMeansDenoisingColored(bgr, None, h, h_color, template, search)[:, :, ::-1]
        else:
            den = cv2.fastNlMeansDenoising(hwc[:, :, 0], None, h, template, search)[:, :, None]
        outs.append(torch.from_numpy(np.ascontiguousarray(den.transpose(2, 0, 1))))
    return torch.stack(outs).float().div(255).to(x.device)


def autocontrast(x: torch.Tensor, low: float = 0.5, high: float = 99.5) -> torch.Tensor:
    """Histogram stretch per image: the `low` / `high` percentiles (over all channels, so colours keep their balance)
    map to 0 / 1, values beyond are clipped. A flat image is only clamped.

    Shape: (B, C, H, W) -> (B, C, H, W), float32 in [0, 1].
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"autocontrast percentiles low={low}, high={high}: expected 0 <= low < high <= 100")
    outs = []
    for img in x.detach().float():
        lo, hi = np.percentile(img.cpu().numpy(), [low, high])
        outs.append(((img - float(lo)) / float(hi - lo)).clamp(0, 1) if hi - lo > 1e-6 else img.clamp(0, 1))
    return torch.stack(outs)


def _bayer(n: int) -> torch.Tensor:
    """The n x n Bayer index matrix (n a power of 2), values 0 .. n*n - 1."""
    m = torch.zeros(1, 1, dtype=torch.float32)
    while m.shape[0] < n:
        m = torch.cat([torch.cat([4 * m, 4 * m + 2], 1), torch.cat([4 * m + 3, 4 * m + 1], 1)], 0)
    return m


def bayer_dither(x: torch.Tensor, bits: int = 8, size: int = 8) -> torch.Tensor:
    """Ordered (Bayer) dithering to `bits` bits: floor(v * L + t) / L with t the Bayer threshold (L = 2**bits - 1).

    The thresholds average to 1/2 over each size x size block, so local means are kept where plain rounding
    would band. The result lies on the `bits`-bit grid.
    Shape: (B, C, H, W) -> (B, C, H, W), float32 in [0, 1].
    """
    if bits < 1 or size < 1 or size & (size - 1):
        raise ValueError(f"bits={bits}, size={size}: expected bits >= 1 and size a power of 2")
    levels = 2**bits - 1
    h, w = x.shape[-2:]
    t = (_bayer(size) + 0.5) / size**2
    t = t.repeat(-(-h // size), -(-w // size))[:h, :w].to(x.device)
    return torch.floor(x.detach().float().clamp(0, 1) * levels + t).clamp(0, levels) / levels


POST = Registry("post-processing op", {"nlm": nlm_denoise, "autocontrast": autocontrast, "dither": bayer_dither})


def _parse_post(post: Sequence[str | tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(post, str):
        post = (post,)
    ops = []
    for item in post:
        name, kw = (item, {}) if isinstance(item, str) else (item[0], dict(item[1]))
        if name not in POST:
            raise ValueError(f"unknown post-processing op {name!r}; accepted: {', '.join(POST_OPS)} "
                             "(a name, or a (name, kwargs) pair)")
        ops.append((name, kw))
    return ops


def postprocess(x: torch.Tensor, post: Sequence[str | tuple[str, dict[str, Any]]]) -> torch.Tensor:
    """Apply post-processing ops in order: names from POST_OPS, or (name, kwargs) pairs, e.g. ('nlm', {'h': 5}).

    Shape: (B, C, H, W) -> (B, C, H, W), float32 in [0, 1].
    """
    for name, kw in _parse_post(post):
        x = POST[name](x, **kw)
    return x


@torch.no_grad()
def infer(model: nn.Module, lr: torch.Tensor, *, device: str | torch.device | None = None,
          tile: int | tuple[int, int] | None = None, tile_overlap: int | str = "auto", self_ensemble: bool = False,
          pad_to: int = 1, amp: str | None = None, post: Sequence[str | tuple[str, dict]] = (),
          progress: bool | None = None) -> torch.Tensor:
    """Super-resolve (or restore) a batch of RGB images with `model`, whatever channels it works on.

    - Y-channel models (`model.in_ch == 1`) see the BT.601 Y of the input; Cb and Cr are upscaled by
      MATLAB-compatible bicubic, as papers do for Y-trained networks.
    - `device`: where the model runs (the model is moved there); default: where its parameters are.
    - `tile`: LR tile size (int or (h, w)) for tiled inference, each tile with `tile_overlap` LR pixels of context
      on each side (see `tiled`); "auto": the model's receptive-field radius (`receptive_field`), so
      the result equals untiled inference; tiles stream to the device and back, the output is assembled on the CPU.
      With `pad_to` > 1 the tile is rounded down to a multiple of it.
    - `pad_to`: reflection-pad the input (each tile when tiled) to a multiple the model needs, crop after.
    - `self_ensemble`: x8 geometric self-ensemble (slower by 8x, usually +0.1-0.2 dB PSNR).
    - `amp`: None / 'fp32' (off), 'bf16' or 'fp16' autocast on the model's device.
    - `post`: post-processing ops applied in order on the RGB output, from POST_OPS: 'nlm' (OpenCV non-local
      means on 8 bits), 'autocontrast' (percentile stretch), 'dither' (ordered Bayer dithering to 8 bits); an
      item may be a (name, kwargs) pair. Post ops clamp to [0, 1].
    - `progress`: a progress bar over tiles; None shows it from PROGRESS_MIN_TILES tiles on.
    The output is float32 on the input's device, not clamped unless a post op ran.
    Shape: (B, 3, h, w) in [0, 1] -> (B, 3, h*scale, w*scale).
    """
    check_image_tensor(lr, "lr")
    post_ops = _parse_post(post)
    if amp is not None:
        vocab.choose("amp precision", amp, AMP_DTYPES)
    if not isinstance(pad_to, int) or pad_to < 1:
        raise ValueError(f"pad_to={pad_to!r}: expected an int >= 1 (e.g. 4 or 8 for U-Nets)")
    if device is not None:
        model.to(device)
    dev = torch.device(device) if device is not None else _model_device(model)
    amp_dtype = AMP_DTYPES.get(amp) if amp is not None else None

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(dev)
        if amp_dtype is None:
            return model(x).float()
        with torch.autocast(dev.type, dtype=amp_dtype):
            return model(x).float()

    fn: Fn = (lambda x: ensemble_x8(run, x)) if self_ensemble else run
    fn = padded(fn, pad_to)

    in_ch = getattr(model, "in_ch", lr.shape[1])
    if in_ch == lr.shape[1]:
        net_in, cbcr = lr, None
    elif in_ch == 1 and lr.shape[1] == 3:
        ycc = rgb_to_ycbcr(lr)
        net_in, cbcr = ycc[:, :1], ycc[:, 1:]
    else:
        raise ValueError(f"model takes {in_ch} channels but the input has {lr.shape[1]}; expected 1 (Y) or 3 (RGB)")

    was_training = model.training
    model.eval()
    try:
        if tile is None:
            out = fn(net_in).to(lr.device)
        else:
            th, tw = (tile, tile) if isinstance(tile, int) else tuple(tile)
            if pad_to > 1:
                th, tw = max(pad_to, th - th % pad_to), max(pad_to, tw - tw % pad_to)
            overlap = receptive_field(model) if tile_overlap == "auto" else tile_overlap
            if not isinstance(overlap, int) or isinstance(overlap, bool):
                raise ValueError(f"tile_overlap={tile_overlap!r}: expected an int >= 0 or 'auto'")
            if th <= 2 * overlap or tw <= 2 * overlap:
                raise ValueError(f"tile={tile!r} with tile_overlap {overlap} (LR px of context on each side"
                                 f"{', the receptive field of this model' if tile_overlap == 'auto' else ''}): "
                                 f"a tile must exceed twice the overlap; use tile >= {2 * overlap + 32}")
            out = tiled(fn, net_in, (th, tw), overlap, progress=progress).to(lr.device)
    finally:
        model.train(was_training)
    if cbcr is not None:
        out = ycbcr_to_rgb(torch.cat([out, imresize_tensor(cbcr, size=tuple(out.shape[-2:])).float()], dim=1))
    return postprocess(out, post_ops) if post_ops else out
