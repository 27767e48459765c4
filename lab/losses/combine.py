"""Losses built from other losses: a loss taken in another transfer space, the registry of named losses, and
weighted sums parsed from a spec string (with `ast`, never `eval`)."""

from __future__ import annotations

import ast
from typing import Any, Sequence

import torch
from torch import nn

from lab import color
from lab.losses.base import CharbonnierLoss, EdgeLoss, FFTLoss, ImageLoss, L1Loss, MSELoss, check_choice
from lab.losses.perceptual import VGGLoss
from lab.losses.structural import L1MSSSIMLoss, MSSSIMLoss, SSIMLoss
from lab.registry import Registry, build

SPACES = ("linear", "srgb", "bt709")


class TransferLoss(ImageLoss):
    """Take `loss` in another transfer space: both inputs are decoded from `source` to linear light, clamped to
    [0, 1] (the curves are not defined below 0), then encoded to `space`, and `loss` is applied there.

    Example: the model predicts linear light, the loss is taken in sRGB: `TransferLoss('l1', space='srgb',
    source='linear')`. Spaces: 'linear', 'srgb' (IEC 61966-2-1), 'bt709' (ITU-R BT.709 OETF); see lab.color.
    `loss` is a loss module or a spec string for `parse_loss`.
    """

    def __init__(self, loss: nn.Module | str = "l1", space: str = "srgb", source: str = "linear",
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.space, self.source = check_choice("space", space, SPACES), check_choice("source", source, SPACES)
        self.loss = parse_loss(loss) if isinstance(loss, str) else loss
        self._decode = {"linear": None, "srgb": color.srgb_to_linear, "bt709": color.bt709_to_linear}[source]
        self._encode = {"linear": None, "srgb": color.linear_to_srgb, "bt709": color.linear_to_bt709}[space]

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        """`x` from the source encoding to the loss space.

        Shape: (B, C, H, W) -> (B, C, H, W).
        """
        if self.space == self.source:
            return x
        x = self._decode(x.clamp(0, 1)) if self._decode else x
        return self._encode(x.clamp(0, 1)) if self._encode else x

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The wrapped loss of each image, in the target space.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        p, t = self.convert(pred), self.convert(target)
        if hasattr(self.loss, "per_image"):
            return self.loss.per_image(p, t)
        return self.loss(p, t).expand(pred.shape[0])


LOSSES = Registry("loss", {
    "l1": L1Loss,
    "mse": MSELoss,
    "charbonnier": CharbonnierLoss,
    "ssim": SSIMLoss,
    "msssim": MSSSIMLoss,
    "l1_msssim": L1MSSSIMLoss,
    "vgg": VGGLoss,
    "edge": EdgeLoss,
    "fft": FFTLoss,
    "transfer": TransferLoss,
}, plural="losses", lower=True)


def list_losses() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(LOSSES)


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered loss by name; KeyError lists the names, ValueError lists a loss's accepted arguments."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(list_losses())}")
    return build(LOSSES, name.lower(), **kwargs)


class CombinedLoss(ImageLoss):
    """Weighted sum of named losses; `last_parts` holds each part's last (unweighted, batch-mean) value.

    `part_names` lists the parts (unique: a repeated name gets a suffix, 'msssim_2'); `weights` maps them to
    their weights; `spec` is the string it was parsed from, if any.
    """

    def __init__(self, terms: Sequence[tuple[str, float, nn.Module]], spec: str = "", reduction: str = "mean"):
        super().__init__(reduction)
        if not terms:
            raise ValueError("CombinedLoss needs at least one (name, weight, loss) term")
        names: list[str] = []
        for name, _, _ in terms:
            base, k = name, 2
            while name in names:
                name, k = f"{base}_{k}", k + 1
            names.append(name)
        self.parts = nn.ModuleDict({n: m for n, (_, _, m) in zip(names, terms)})
        self.weights = {n: float(w) for n, (_, w, _) in zip(names, terms)}
        self.spec = spec
        self.last_parts: dict[str, float] = {}

    @property
    def part_names(self) -> list[str]:
        """The parts' unique names, in spec order."""
        return list(self.parts)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the parts for each image; records `last_parts`.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        total = pred.new_zeros(pred.shape[0])
        for name, loss in self.parts.items():
            v = loss.per_image(pred, target) if hasattr(loss, "per_image") else loss(pred, target).expand_as(total)
            self.last_parts[name] = float(v.detach().mean())
            total = total + self.weights[name] * v
        return total

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}" if self.spec else ""


def _spec_error(spec: str, why: str) -> ValueError:
    return ValueError(f"bad loss spec {spec!r}: {why}. Form: 'l1 + 0.1*msssim(sigmas=[0.5, 1.5, 4.0]) + 2*edge'; "
                      f"known losses: {', '.join(list_losses())}")


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _number(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _terms(node: ast.AST, spec: str) -> list[tuple[float, str, dict[str, Any]]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _terms(node.left, spec) + _terms(node.right, spec)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        pairs = [(node.right, node.left)] if isinstance(node.op, ast.Div) else [(node.left, node.right),
                                                                                (node.right, node.left)]
        for num, rest in pairs:
            w = _number(num)
            if w is not None:
                if isinstance(node.op, ast.Div):
                    if w == 0:
                        raise _spec_error(spec, "division by zero")
                    w = 1 / w
                if w < 0:
                    raise _spec_error(spec, f"negative weight {w}")
                return [(w * t[0], t[1], t[2]) for t in _terms(rest, spec)]
        raise _spec_error(spec, "a product needs a number on one side")
    if isinstance(node, ast.Name):
        return [(1.0, node.id.lower(), {})]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.args or any(k.arg is None for k in node.keywords):
            raise _spec_error(spec, f"{node.func.id}(...) takes keyword arguments only")
        try:
            kw = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError as e:
            raise _spec_error(spec, f"arguments of {node.func.id} must be literals ({e})") from None
        return [(1.0, node.func.id.lower(), kw)]
    raise _spec_error(spec, f"unexpected {ast.dump(node)[:60]}")


def parse_loss(spec: str) -> CombinedLoss:
    """Build a `CombinedLoss` from a spec such as 'l1 + 0.1*msssim(sigmas=[0.5, 1.5, 4.0]) + 2*edge' (no eval)."""
    if not isinstance(spec, str) or not spec.strip():
        raise _spec_error(str(spec), "empty spec")
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except SyntaxError as e:
        raise _spec_error(spec, f"syntax error ({e.msg})") from None
    terms = []
    for w, name, kw in _terms(tree.body, spec):
        if name not in LOSSES:
            raise _spec_error(spec, f"unknown loss {name!r}")
        try:
            terms.append((name, w, get_loss(name, **kw)))
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"loss spec {spec!r}: {e}") from e
    return CombinedLoss(terms, spec=spec)
