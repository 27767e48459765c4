"""The `lab` command's smaller subcommands: models, noise-bank, bench argument checks."""

import numpy as np
import pytest

from lab.cli import main
from lab.images import write_image
from lab.noise_bank import load_bank


def test_models_lists_the_registry(capsys):
    assert main(["models", "edsr"]) == 0
    assert capsys.readouterr().out.split() == ["edsr", "edsr_baseline"]


def test_noise_bank_from_a_folder_of_noisy_flat_photos(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(2):
        flat = np.full((96, 96, 3), 90 + 40 * i, np.float64)
        noisy = np.clip(flat + rng.normal(0, 6, flat.shape), 0, 255).astype(np.uint8)
        write_image(tmp_path / "photos" / f"p{i}.png", noisy)
    out = tmp_path / "bank.npz"
    assert main(["noise-bank", str(tmp_path / "photos"), str(out), "--patch", "16"]) == 0
    bank = load_bank(out)
    assert len(bank) > 0
    assert bank.patch_size == 16
    assert bank.std() == pytest.approx(6 / 255, rel=0.25)
    assert f"{len(bank)} noise patches" in capsys.readouterr().out
    assert main(["noise-bank", str(tmp_path / "empty"), str(out)]) == 2


def test_bench_rejects_unknown_benchmarks(capsys):
    assert main(["bench", "train,warp"]) == 2
    err = capsys.readouterr().err
    assert "unknown bench section 'warp'" in err
    assert "accepted: P1" in err


def test_data_prepare_and_cache_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "src").mkdir()
    write_image(tmp_path / "src" / "big.png", np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    out = tmp_path / "sub"
    assert main(["data", "prepare", str(tmp_path / "src"), str(out), "--crop", "96", "--step", "64", "--no-progress"]) == 0
    assert "1 images -> 15 crops" in capsys.readouterr().out
    assert len(list(out.glob("*.png"))) == 15
    assert main(["data", "prepare", str(tmp_path / "src"), str(out), "--crop", "64", "--no-progress"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(["data", "cache", str(out), "--no-progress"]) == 0
    assert "15 images decoded" in capsys.readouterr().out
    assert main(["data", "cache", str(out), "--no-progress"]) == 0
    second = capsys.readouterr().out
    assert "0 images decoded" in second
    assert "15 already there" in second


def test_run_spec_takes_a_specs_base_params_checked_before_any_run(tmp_path, capsys, monkeypatch):
    """`lab run train --spec demo` starts from the demo's params (the same ones `lab bench` P4 reads); they are checked
    like -p values before a run directory exists, and a spec of another notebook is refused by name."""
    from lab.checks import check_names
    from lab.params import notebook_path, resolve
    from lab.sweep import load_spec

    demo = load_spec("demo")
    assert demo["notebook"] == "train"
    assert demo["base"]["time_budget"] > 0
    check_names(resolve(notebook_path("train"), demo["base"]))
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "runs"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebook: train\nbase: {model: edsr_baselin}\n")
    assert main(["run", "train", "--spec", str(bad)]) == 2
    assert "unknown model 'edsr_baselin'" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text("notebook: evaluate\nbase: {}\n")
    assert main(["run", "train", "--spec", str(other)]) == 2
    assert "is for notebook 'evaluate', not 'train'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
