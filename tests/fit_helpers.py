"""Small fastai callbacks the training tests share."""

from __future__ import annotations

from fastai.callback.core import Callback, CancelFitException


class CutAfter(Callback):
    """Stop the fit after epoch `n`, as a killed process would (after SaveCheckpoints saved that epoch's last.pth)."""

    order = 99

    def __init__(self, n: int):
        self.n = n

    def after_epoch(self):
        if self.epoch == self.n:
            raise CancelFitException()
