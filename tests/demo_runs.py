"""Synthetic finished runs (no training) for ledger, plot, widget and browser tests: real files, made-up quality."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


def _psnr_y(a: np.ndarray, b: np.ndarray, scale: int) -> float:
    from lab.evaluate import score_uint8

    return score_uint8(a, b, scale)[0]


def _cost_of(name: str) -> tuple[int, float]:
    """Parameter count and GFLOPs at a 64x64 LR input, measured on the meta device (no memory, no time)."""
    from lab import models
    from lab.models.profile import count_flops

    with torch.device("meta"):
        m = models.create(name, scale=2)
    return sum(p.numel() for p in m.parameters()), count_flops(m, (1, getattr(m, "in_ch", 3), 64, 64), "meta") / 1e9


def make_demo_runs(root: str | os.PathLike, n: int = 3, *, image: str = "chelsea", seed: int = 0,
                   epochs: int = 3) -> list[Path]:
    """Write `n` small synthetic, finished runs (no training) to try the ledger, its plots and widgets.

    Each run has params, metrics with cost, an epoch history, sample strips and its output on the `valid` set
    (with the references an evaluation keeps: LR, bicubic, HR): the built-in photo's bicubic upscale pulled
    towards the HR image by a per-run amount, plus seeded noise, so the runs differ visibly and in PSNR. The runs
    are marked with the tag `demo`.
    """
    import cv2
    import numpy as np

    from lab import runs as _runs
    from lab.data import builtin_image
    from lab.images import modcrop
    from lab.liveness import HOST
    from lab.runs import add_note

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scale = 2
    hr = modcrop(builtin_image(image), scale)
    h, w = hr.shape[:2]
    lr = cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    bic = cv2.resize(lr, (w, h), interpolation=cv2.INTER_CUBIC)
    bic_psnr = _psnr_y(bic, hr, scale)
    models = ("srcnn", "edsr_baseline", "imdn_rtc", "edsr")
    costs = {m: _cost_of(m) for m in models}
    paths = []
    for i in range(n):
        model = models[i % len(models)]
        pull = {"srcnn": 0.35, "imdn_rtc": 0.5, "edsr_baseline": 0.65, "edsr": 0.75}[model] + 0.02 * (i // len(models))
        rid = _runs.allocate_id(root)
        d = root / f"{rid:04d}-demo-{model.replace('_', '-')}"
        d.mkdir()
        run = _runs.Run(d)
        params = {"name": f"demo {model}", "model": model, "model_kwargs": {}, "scale": scale, "data": "builtin",
                  "valid": f"builtin:{image}", "degradation": "bicubic", "epochs": epochs,
                  "lr": float(1e-3 / (1 + i % 2)), "loss": ("l1", "l2")[i % 2], "seed": seed + i}
        hist, sr = [], bic
        for e in range(epochs):
            q = pull * (e + 1) / epochs
            noise = rng.normal(0, 2.0, hr.shape)
            sr = np.clip(bic + q * (hr.astype(np.float64) - bic) + noise, 0, 255).astype(np.uint8)
            p = _psnr_y(sr, hr, scale)
            hist.append({"epoch": e, "train_loss": 0.08 / (e + 1) * (1.2 - pull), "valid_loss": 0.07 / (e + 1) * (1.2 - pull),
                         "psnr_y": p, "ssim_y": min(0.99, 0.8 + 0.01 * p / 3), "time": 1.0})
            y0, x0 = h // 3, w // 3
            c = (slice(y0, y0 + 64), slice(x0, x0 + 64))
            lr_near = np.repeat(np.repeat(lr[y0 // 2:y0 // 2 + 32, x0 // 2:x0 // 2 + 32], 2, 0), 2, 1)
            run.save_sample(np.concatenate([lr_near, sr[c], hr[c]], axis=1), e)
        run.save_eval_output("valid", image, sr)
        for kind, img in (("lr", lr), ("baseline", bic), ("hr", hr)):
            run.save_eval_reference("valid", image, kind, img)
        final = hist[-1]["psnr_y"]
        table = [{"image": image, "height": h, "width": w, "psnr_y": final, "ssim_y": hist[-1]["ssim_y"],
                  "baseline_psnr_y": bic_psnr, "gain_psnr_y": final - bic_psnr}]
        run.save_eval_table("valid", table)
        run.write_json("params.json", params)
        run.write_json("history.json", hist)
        created = _runs.now()
        run.write_json("meta.json", {"id": rid, "name": d.name, "title": params["name"], "created": created,
                                     "notebook": "train.ipynb", "parent": None, "git": {"commit": None, "dirty": None},
                                     "demo": True})
        nparams, gflops = costs[model]
        run.write_json("metrics.json", {"train_minutes": 0.1 * (i + 1), "params": nparams, "gflops": gflops,
                                        "forward_ms": gflops * 2.0 + 1.0, "valid_psnr_y": final,
                                        "valid_ssim_y": hist[-1]["ssim_y"], "valid_baseline_psnr_y": bic_psnr, "valid_baseline": "bicubic",
                                        "valid_gain_psnr_y": final - bic_psnr})
        run.write_json("status.json", {"status": "done", "started": created, "finished": created,
                                       "heartbeat": created, "updated": created, "pid": os.getpid(), "host": HOST})
        add_note(d, tags=["demo"])
        paths.append(d)
    return paths
