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
    assert main(["bench", "P1,warp"]) == 2
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


def test_version_and_python_m_lab(capsys):
    import subprocess
    import sys

    from lab import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"lab (restoration-lab) {__version__}"
    got = subprocess.run([sys.executable, "-m", "lab", "--version"], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"lab (restoration-lab) {__version__}"


def test_exit_codes_internal_error_1_bad_input_2_interrupted_130(monkeypatch, capsys):
    import lab.models

    def boom(pattern):
        raise RuntimeError("registry exploded")

    monkeypatch.setattr(lab.models, "list_models", boom)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "registry exploded (an internal error, RuntimeError" in err
    assert "Traceback" not in err

    def stop(pattern):
        raise KeyboardInterrupt

    monkeypatch.setattr(lab.models, "list_models", stop)
    assert main(["models"]) == 130
    assert "interrupted" in capsys.readouterr().err

    def bad(pattern):
        raise ValueError("no such pattern")

    monkeypatch.setattr(lab.models, "list_models", bad)
    assert main(["models"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2


def test_liveness_through_psutil():
    import os
    import subprocess
    import sys
    import time

    from lab.liveness import pid_alive

    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while pid_alive(child.pid) and time.monotonic() < deadline:  # exits, then a zombie until reaped: dead
        time.sleep(0.1)
    assert not pid_alive(child.pid), "an exited, unreaped child (a zombie) reads as dead"
    child.wait()
    assert not pid_alive(child.pid)


def test_progress_line_of_a_validation():
    from lab.watch import progress_line

    line = progress_line({"epoch": 2, "step": 40, "train_loss": 0.0312, "valid_loss": 0.0298, "psnr_y": 30.214,
                          "lr": 1e-3, "elapsed_s": 61.2, "train_s": 50.0})
    assert line == "epoch 2 step 40: train_loss 0.0312, valid_loss 0.0298, psnr_y 30.21  (61 s)"


@pytest.mark.slow
def test_lab_run_shows_its_folder_then_a_line_per_validation(tmp_path, capsys):
    argv = ["run", "train", "--runs", str(tmp_path / "runs"), "-p", "data", "builtin:astronaut", "-p", "model",
            "edsr_baseline", "-p", "model_kwargs", "{num_block: 1, num_feat: 8}", "-p", "epochs", "2", "-p", "repeat",
            "8", "-p", "patch_size", "12", "-p", "batch_size", "4", "-p", "eval_sets", "", "-p", "valid_max_size", "24",
            "-p", "profile_size", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    run_dir = next((tmp_path / "runs").iterdir())
    assert out[0].startswith(f"{run_dir.name}: running in {run_dir}"), out
    assert [line.split()[:2] for line in out[1:3]] == [["epoch", "0"], ["epoch", "1"]], out
    assert "valid_loss" in out[2], out
    assert out[-1].startswith(f"{run_dir.name}: done"), out
    assert main([*argv, "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main([*argv, "--log-output"]) == 0  # the notebook's own output, and still the validation lines
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("Executing Cell") for line in out), out
    assert any("steps of 4 patches" in line or "epochs of" in line for line in out), out
    assert sum(line.split()[:1] == ["epoch"] for line in out) == 2, out


def test_the_bench_sees_other_lab_processes_through_psutil():
    import subprocess
    import sys

    from lab.bench.common import lab_processes

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "lab.execute"])
    try:
        assert any(p.split()[0] == str(child.pid) for p in lab_processes())
    finally:
        child.kill()
        child.wait()
    assert not any(p.split()[0] == str(child.pid) for p in lab_processes())


def test_an_empty_ledger_names_the_folder_it_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "shared-runs"))
    assert main(["ledger"]) == 0
    assert capsys.readouterr().out.strip() == f"no runs in {tmp_path / 'shared-runs'}"
    assert main(["ledger", "--runs", str(tmp_path / "mine")]) == 0
    assert capsys.readouterr().out.strip() == f"no runs in {tmp_path / 'mine'}"
