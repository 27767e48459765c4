"""Checkpoint import: official IMDN / IMDN-RTC / FSRCNN weights reproduce their published Set5 scores."""

from __future__ import annotations

import pytest
import torch

from lab import models
from lab.models import load_pretrained


def _weights(ref_dir, rel: str):
    p = ref_dir / "weights" / rel
    if not p.is_file():
        pytest.skip(f"{rel} not found under {ref_dir / 'weights'}")
    return p


def _set5(model, set5_dir, scale):
    from lab.evaluate import evaluate_benchmark

    return evaluate_benchmark(model, set5_dir, scale, progress=False)


# published Set5 PSNR-Y / SSIM-Y of IMDN (Hui et al., ACM MM 2019, table 2)
@pytest.mark.slow
@pytest.mark.parametrize("scale,psnr,ssim", [(2, 38.00, 0.9605), (3, 34.36, 0.9270), (4, 32.21, 0.8948)])
def test_imdn_reproduces_published_set5(ref_dir, set5_dir, scale, psnr, ssim):
    m = load_pretrained(_weights(ref_dir, f"IMDN/IMDN_x{scale}.pth"))
    assert m.model_name == "imdn"
    assert m.scale == scale
    assert not m.training
    df = _set5(m, set5_dir, scale)
    assert len(df) == 5
    assert abs(df["psnr_y"].mean() - psnr) <= 0.01, df[["image", "psnr_y"]]
    assert abs(df["ssim_y"].mean() - ssim) <= 0.0005, df[["image", "ssim_y"]]


def test_imdn_rtc_beats_bicubic(ref_dir, set5_dir):
    m = load_pretrained(_weights(ref_dir, "IMDN/model_RTC.pth"))
    assert m.model_name == "imdn_rtc"
    assert m.scale == 2
    assert sum(p.numel() for p in m.parameters()) == 20_190
    df = _set5(m, set5_dir, 2)
    assert (df["psnr_y"] > df["baseline_psnr_y"]).all()
    assert df.attrs["baseline"] == "bicubic"
    assert df["gain_psnr_y"].mean() > 1.0


def test_fsrcnn_x2_on_set5(ref_dir, set5_dir):
    m = load_pretrained(_weights(ref_dir, "FSRCNN/fsrcnn_x2.pth"))
    assert m.model_name == "fsrcnn"
    assert m.scale == 2
    assert m.in_ch == 1
    df = _set5(m, set5_dir, 2)
    assert abs(df["psnr_y"].mean() - 37.14) <= 0.1, df[["image", "psnr_y"]]


def test_fsrcnn_keys_map_one_to_one(ref_dir):
    lines = _weights(ref_dir, "FSRCNN/fsrcnn_x2.keys.txt").read_text().splitlines()
    official = {ln.split("\t")[0]: ln.split("\t")[1] for ln in lines if ln and not ln.startswith("#")}
    ours = {k: str(tuple(v.shape)) for k, v in models.create("fsrcnn", scale=2).state_dict().items()}
    assert ours == official


def test_fsrcnn_scale_comes_from_name_or_argument(ref_dir, tmp_path):
    sd = torch.load(_weights(ref_dir, "FSRCNN/fsrcnn_x2.pth"), map_location="cpu", weights_only=True)
    torch.save(sd, tmp_path / "weights.pth")
    with pytest.raises(ValueError, match="scale"):
        load_pretrained(tmp_path / "weights.pth")
    m = load_pretrained(tmp_path / "weights.pth", scale=3)
    assert m.scale == 3
    assert m(torch.rand(1, 1, 5, 6)).shape == (1, 1, 15, 18)


def test_wrong_name_reports_keys(ref_dir):
    with pytest.raises(ValueError, match="missing keys"):
        load_pretrained(_weights(ref_dir, "IMDN/IMDN_x2.pth"), name="rcan")


def test_imported_model_round_trips_as_lab_checkpoint(ref_dir, tmp_path):
    m = load_pretrained(_weights(ref_dir, "IMDN/model_RTC.pth"))
    models.save_checkpoint(tmp_path / "rtc.pth", m)
    m2 = load_pretrained(tmp_path / "rtc.pth")
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert m2.model_name == "imdn_rtc"
    assert torch.equal(m(x), m2(x))


def test_lab_checkpoint_and_errors(tmp_path):
    m = models.create("imdn", scale=3, num_feat=8, num_block=2, reduction=4)
    models.save_checkpoint(tmp_path / "imdn.pth", m)
    m2 = load_pretrained(tmp_path / "imdn.pth")
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    assert m2.model_kwargs == m.model_kwargs
    assert torch.equal(m.eval()(x), m2(x))
    with pytest.raises(ValueError, match="imdn"):
        load_pretrained(tmp_path / "imdn.pth", name="rcan")
    torch.save({"w": torch.zeros(3)}, tmp_path / "mystery.pth")
    with pytest.raises(ValueError, match="imdn_rtc"):  # lists the names to pass
        load_pretrained(tmp_path / "mystery.pth")
    with pytest.raises(FileNotFoundError):
        load_pretrained(tmp_path / "absent.pth")


def test_plain_state_dict_with_name(tmp_path):
    m = models.create("rcan", scale=2, num_feat=8, num_group=1, num_block=1, reduction=4)
    torch.save({"state_dict": {f"module.{k}": v for k, v in m.state_dict().items()}}, tmp_path / "rcan.pth")
    m2 = load_pretrained(tmp_path / "rcan.pth", name="rcan", num_feat=8, num_group=1, num_block=1, reduction=4)
    x = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.eval()(x), m2(x))
    with pytest.raises(ValueError, match="shape mismatches"):
        load_pretrained(tmp_path / "rcan.pth", name="rcan", num_feat=16, num_group=1, num_block=1, reduction=4)
