"""`lab bench export`: an exported model in onnxruntime beside PyTorch on a real picture: the largest difference
and images/s, interleaved (paired rounds on a shared machine)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import skimage.data
import torch

from lab.bench.common import Sizes
from lab.export import export_onnx, onnx_available
from lab.models import create


def real_picture(width: int = 480, height: int = 270) -> torch.Tensor:
    """scikit-image's astronaut, centre-cropped to the aspect and shrunk (area) to width x height: (1, 3, H, W)."""
    img = skimage.data.astronaut()
    h, w = img.shape[:2]
    ch = min(h, round(w * height / width))
    top = (h - ch) // 2
    img = cv2.resize(img[top:top + ch], (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32) / 255)


def bench_export(sizes: Sizes, model: str = "edsr_baseline", scale: int = 2) -> dict[str, Any]:
    """EDSR-baseline x2 (seeded random weights: the numerics, not the quality, are compared) on a 480x270 picture
    (240x135 with --quick): max |ONNX - PyTorch| in [0, 1] units, and both images/s over interleaved rounds."""
    reason = onnx_available()
    if reason:
        return {"skipped": reason}
    import onnxruntime as ort

    torch.manual_seed(0)
    net = create(model, scale=scale).eval()
    x = real_picture(*((240, 135) if sizes.quick else (480, 270)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(net, path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"lr": x.numpy()}
        with torch.no_grad():
            ref = net(x)
        diff = float(np.abs(sess.run(None, feed)[0] - ref.numpy()).max())
        t_pt, t_ort, rounds, t_end = [], [], 0, time.perf_counter() + (20 if sizes.quick else sizes.seconds)
        while rounds < 3 or (time.perf_counter() < t_end and rounds < sizes.rounds):
            t0 = time.perf_counter()
            with torch.no_grad():
                net(x)
            t1 = time.perf_counter()
            sess.run(None, feed)
            t2 = time.perf_counter()
            t_pt.append(t1 - t0)
            t_ort.append(t2 - t1)
            rounds += 1
    pt, ox = float(np.median(t_pt)), float(np.median(t_ort))
    return {"model": model, "scale": scale, "input": f"{x.shape[-1]}x{x.shape[-2]}", "max_abs_diff": diff,
            "pytorch_images_s": 1 / pt, "onnxruntime_images_s": 1 / ox, "rounds": rounds,
            "threads": torch.get_num_threads()}
