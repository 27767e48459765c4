"""Mixup for restoration training: each sample blends with another by its own lambda, input and target together,
and the fastai callback that applies it to training batches (seeded, so a run replays its mixing)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from fastai.callback.core import Callback

from lab import vocab
from lab.color import linear_to_srgb, srgb_to_linear
from lab.degrade import check_probability, check_seed, check_value
from lab.images import check_image_tensor


class Mixed(NamedTuple):
    """Mixup result: mixed input and target, the per-sample lambdas (B,) and partner indices (B,)."""

    lr: torch.Tensor
    hr: torch.Tensor
    lam: torch.Tensor
    perm: torch.Tensor


def mixup_pair(lr: torch.Tensor, hr: torch.Tensor, rng: np.random.Generator, alpha: float = 1.2,
               space: str = "srgb") -> Mixed:
    """Mixup for restoration: each sample i blends with sample perm[i] by its own lambda_i ~ Beta(alpha, alpha),
    the input and the target with the same lambda_i (alpha 1.2 as in Yoo et al. 2020, CutBlur,
    https://arxiv.org/abs/2004.00448). `space='linear'` blends in linear light (sRGB decoded first).

    Shape: (B, C, h, w), (B, C, H, W) -> Mixed(lr (B, C, h, w), hr (B, C, H, W), lam (B,), perm (B,)).
    """
    check_image_tensor(lr, "lr")
    check_image_tensor(hr, "hr")
    if lr.shape[0] != hr.shape[0]:
        raise ValueError(f"lr and hr batches differ: {lr.shape[0]} vs {hr.shape[0]}")
    alpha = check_value("mixup alpha", alpha, lo=0, lo_open=True)
    vocab.choose("mixup space", space, vocab.MIXUP_SPACES)
    b = lr.shape[0]
    lam = torch.from_numpy(rng.beta(alpha, alpha, size=b)).to(lr.dtype)
    perm = torch.from_numpy(rng.permutation(b)).long()

    def mix(x: torch.Tensor) -> torch.Tensor:
        lam4 = lam.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        other = x[perm.to(x.device)]
        if space == "srgb":
            return lam4 * x + (1 - lam4) * other
        lin = lam4 * srgb_to_linear(x.clamp(0, 1)) + (1 - lam4) * srgb_to_linear(other.clamp(0, 1))
        return linear_to_srgb(lin).clamp(0, 1)

    return Mixed(mix(lr), mix(hr), lam, perm)


class RestorationMixup(Callback):
    """Mixup on training batches (input and target together, a lambda per sample) with probability `p`.

    The callback owns a numpy Generator seeded with `seed`, so a run replays its mixing.
    """

    run_valid = False

    def __init__(self, alpha: float = 1.2, p: float = 1.0, space: str = "srgb", seed: int = 0):
        self.alpha, self.p, self.space = alpha, check_probability(p, "mixup p"), space
        self.rng = np.random.default_rng(check_seed(seed))

    def before_batch(self) -> None:
        """Replace the batch by its mixup (training only)."""
        if self.p < 1 and self.rng.random() >= self.p:
            return
        m = mixup_pair(self.learn.xb[0], self.learn.yb[0], self.rng, self.alpha, self.space)
        self.learn.xb, self.learn.yb = (m.lr,), (m.hr,)
