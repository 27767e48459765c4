"""Kernels from real pictures: the estimator recovers a known Gaussian better than a bank pick does, the bank it
writes is one `realsr` reads, the commands' bad inputs are one line; `lab noise-bank`'s thresholds on the command
line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from lab.cli import main
from lab.images import write_image
from lab.kernel_estimate import build_bank, estimate_kernel, kernel_error
from lab.kernels import builtin_kernel_bank, filter2d, gaussian_kernel, load_kernel_bank, make_kernel
from lab.noise_bank import load_bank


def _blurred(kernel, name="astronaut"):
    photo = getattr(skimage.data, name)()
    sharp = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(sharp.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    return (filter2d(x, kernel)[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def test_the_estimator_recovers_a_known_gaussian_better_than_chance():
    truth = gaussian_kernel(15, 1.6, 0.9, 30.0)
    est, cov = estimate_kernel(_blurred(truth))
    chance = np.mean([kernel_error(b, truth) for b in builtin_kernel_bank()])
    assert kernel_error(est, truth) < 0.5 * chance
    sig = np.sqrt(np.linalg.eigvalsh(cov))
    assert sig[1] == pytest.approx(1.6, rel=0.35)
    assert sig[0] < sig[1], "the anisotropy is seen"


def test_a_wider_blur_gives_a_wider_kernel_and_scale_widens_it():
    narrow = estimate_kernel(_blurred(gaussian_kernel(15, 0.8)), size=15)[1]
    wide = estimate_kernel(_blurred(gaussian_kernel(15, 2.0)), size=15)[1]
    assert np.trace(wide) > 2 * np.trace(narrow)
    x2 = estimate_kernel(_blurred(gaussian_kernel(15, 0.8)), size=15, scale=2)[1]
    assert np.trace(x2) == pytest.approx(4 * np.trace(narrow))


def test_kernel_bank_command_writes_a_bank_realsr_reads(tmp_path, capsys):
    for i, name in enumerate(("chelsea", "coffee")):
        write_image(tmp_path / "frames" / f"f{i}.png", _blurred(gaussian_kernel(15, 1.2), name))
    out = tmp_path / "bank"
    assert main(["kernel-bank", str(tmp_path / "frames"), str(out), "--scale", "2", "--no-progress"]) == 0
    assert "2 kernels" in capsys.readouterr().out
    bank = load_kernel_bank(out)
    assert len(bank) == 2
    assert all(abs(float(k.sum()) - 1) < 1e-5 for k in bank)
    assert make_kernel({"type": "bank", "path": str(out), "index": 1}).shape == (15, 15)
    with pytest.raises(ValueError, match="holds no pictures"):
        build_bank(tmp_path / "bank", tmp_path / "b2", progress=False)


@pytest.mark.parametrize("argv, expected", [
    (["kernel-bank"], "needs a folder of real pictures"),
    (["kernel-bank", "missing/", "out/"], "does not exist"),
    (["kernel-bank", ".", "out/", "--size", "8"], "expected an odd integer"),
])
def test_kernel_bank_bad_inputs_are_one_line(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "p.png", _blurred(gaussian_kernel(15, 1.0), "coffee"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert len(err.splitlines()) == 1


def test_noise_bank_thresholds_and_denoiser_on_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    flat = np.clip(np.full((96, 96, 3), 120.0) + rng.normal(0, 6, (96, 96, 3)), 0, 255).astype(np.uint8)
    write_image(tmp_path / "photos" / "p.png", flat)
    out = tmp_path / "bank.npz"
    assert main(["noise-bank", str(tmp_path / "photos"), str(out), "--patch", "16", "--denoise", "median",
                 "--median-size", "3", "--flat-quantile", "0.5", "--max-grad-corr", "0.5", "--stride", "8"]) == 0
    meta = load_bank(out).meta
    assert (meta["denoise"], meta["max_grad_corr"], meta["flat_quantile"], meta["stride"]) == ("median", 0.5, 0.5, 8)
    capsys.readouterr()
    assert main(["noise-bank", str(tmp_path / "photos"), str(out), "--denoise", "wiener"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown denoiser 'wiener'" in err
    assert len(err.splitlines()) == 1
