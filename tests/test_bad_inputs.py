"""Bad inputs get one clear line that names the value, the accepted ones and the fix, exit code 2, never a traceback,
and nothing already recorded is lost. One table of CLI cases, one of library cases (images, checkpoints)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from lab import models, runs
from lab.cli import main
from lab.images import read_image, write_image

CLI_CASES = [  # (argv, fragment of the one line the user sees)
    (["run", "train", "-p", "epochs", "abc"], "parameter 'epochs' expects an integer like 5, got 'abc'"),
    (["run", "train", "-p", "epochs", "-3"], "'epochs' must be an integer >= 1, got -3"),
    (["run", "train", "-p", "lr", "-1"], "'lr' must be a finite number > 0"),
    (["run", "train", "-p", "lr", "nan"], "'lr' must be a finite number > 0, got nan"),
    (["run", "train", "-p", "lr", "inf"], "'lr' must be a finite number > 0, got inf"),
    (["run", "train", "-p", "scale", "0"], "'scale' must be an integer >= 1 for training"),
    (["run", "train", "-p", "batch_size", "0"], "'batch_size' must be an integer >= 1"),
    (["run", "train", "-p", "betas", "[0.9]"], "'betas' must be two numbers in [0, 1)"),
    (["run", "train", "-p", "ema", "1.5"], "'ema' must be a decay in [0, 1)"),
    (["run", "train", "-p", "amp", "bf32"], "'amp' must be one of"),
    (["run", "train", "-p", "degrade_on", "gpu"], "'degrade_on' must be one of ('loader', 'device'), got 'gpu'"),
    (["run", "train", "-p", "model", "edsr_baselin"], "unknown model 'edsr_baselin'; known models:"),
    (["run", "train", "-p", "loss", "l1 + nope"], "unknown loss 'nope'"),
    (["run", "train", "-p", "degradation", "blurry"], "unknown degradation preset 'blurry'"),
    (["run", "train", "-p", "degradation", "realsr"], "needs kernel_bank=... and noise_bank=..."),
    (["run", "train", "-p", "schedule", "linear"], "unknown schedule 'linear'"),
    (["run", "train", "-p", "opt", "lamb"], "unknown optimizer 'lamb'; accepted: adam, adamw, sgd"),
    (["run", "train", "-p", "gan", "true", "-p", "disc", "disc_big"], "unknown discriminator 'disc_big'"),
    (["run", "train", "-p", "eval_sets", "NoSuchSet"], "unknown evaluation set 'NoSuchSet'"),
    (["run", "train", "-p", "valid", "split:1.5"], "'split:<share>' with 0 < share < 1, e.g. 'split:0.05'"),
    (["run", "train", "-p", "valid", "split:x"], "'split:<share>' with 0 < share < 1, e.g. 'split:0.05'"),
    (["run", "train", "-p", "monitor", "set5_psnr_y"], "monitor 'set5_psnr_y' is not a validation column of valid"),
    (["run", "train", "-p", "nope", "1"], "unknown parameter(s) ['nope'] for notebook 'train'"),
    (["run", "nosuchnotebook"], "notebook 'nosuchnotebook' not found"),
    (["sweep", "nosuchstudy"], "sweep spec 'nosuchstudy' not found"),
    (["rerun", "99"], "no run with id 99"),
    (["resume", "99"], "no run with id 99"),
    (["note", "99", "x"], "no run with id 99"),
    (["note", "1", "x", "--tag", "a,b"], "contain ','"),
    (["ledger", "--status", "finished"], "unknown status ['finished']"),
    (["export", "log.xlsx"], "export format 'xlsx' not supported"),
    (["data", "prepare", "no_such_folder", "out"], "does not exist"),
    (["data", "cache", "no_such_folder"], "does not exist"),
]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    run = runs.create({"model": "srcnn"}, root=tmp_path / "runs", name="kept")
    run.finish({"valid_psnr_y": 30.0})
    return tmp_path / "runs"


@pytest.mark.parametrize("argv, fragment", CLI_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_cli_bad_input_is_one_clear_line(argv, fragment, root, capsys):
    before = sorted(p.name for p in root.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0], err
    assert fragment in err[0], err[0]
    assert "Error: " not in err[0].split(": ", 1)[1][:20], f"the type is not repeated: {err[0]}"
    assert sorted(p.name for p in root.iterdir()) == before, "no run directory made, nothing lost"
    assert runs.find(1, root).status == "done"


def test_sweep_specs_with_python_tags_or_bad_yaml_are_refused(root, tmp_path, capsys):
    (tmp_path / "evil.yaml").write_text("notebook: train\ngrid: !!python/object/apply:os.system ['echo pwned']\n")
    (tmp_path / "bad.yaml").write_text("notebook: train\ngrid: {lr: [1, 2\n")
    for spec, fragment in (("evil.yaml", "not valid YAML"), ("bad.yaml", "not valid YAML at line")):
        assert main(["sweep", str(tmp_path / spec), "--dry-run"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert fragment in err[0], err
        assert "Traceback" not in err[0], err


def test_timeouts_are_seconds_above_zero(capsys):
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit) as e:
            main(["run", "train", "--timeout", bad])
        assert e.value.code == 2
        assert "seconds" in capsys.readouterr().err


def test_a_run_name_cannot_leave_the_runs_folder(tmp_path):
    run = runs.create({}, root=tmp_path / "runs", name="../../etc/passwd")
    assert run.dir.parent == tmp_path / "runs"
    assert run.name == "0001-etc-passwd"


# -- images and checkpoints ------------------------------------------------------------------------------------

def _png(tmp_path, name, img):
    return write_image(tmp_path / name, img)


def _truncated(tmp_path):
    p = _png(tmp_path, "full.png", np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (tmp_path / "trunc.png").write_bytes(p.read_bytes()[:200])
    return tmp_path / "trunc.png"


def _cmyk(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).convert("CMYK").save(tmp_path / "cmyk.jpg")
    return tmp_path / "cmyk.jpg"


def test_images_of_every_kind_read_or_fail_clearly(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="could not be decoded"):
        read_image(_truncated(tmp_path))
    deep = _png(tmp_path, "deep.png", np.full((8, 8, 3), 65535, np.uint16))
    assert read_image(deep).dtype == np.uint8, "16-bit scaled to 8"
    assert read_image(deep).max() == 255, "16-bit scaled to 8"
    gray = _png(tmp_path, "gray.png", np.full((8, 8, 1), 7, np.uint8))
    assert read_image(gray).shape == (8, 8, 3)
    import cv2

    cv2.imwrite(str(tmp_path / "rgba.png"), np.full((8, 8, 4), 9, np.uint8))
    assert read_image(tmp_path / "rgba.png").shape == (8, 8, 3), "alpha dropped"
    assert read_image(_cmyk(tmp_path)).shape == (16, 16, 3), "CMYK JPEG as RGB"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image(tmp_path / "missing.png")


def test_checkpoints_truncated_foreign_or_pickled_are_refused(tmp_path):
    good = models.save_checkpoint(tmp_path / "good.pth", models.create("srcnn"))
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        models.load_checkpoint(tmp_path / "cut.pth")
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        models.init_from_checkpoint(models.create("srcnn"), tmp_path / "cut.pth")

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model_name": "srcnn", "state_dict": {}, "x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="pickled Python objects, which could run code"):
        models.load_checkpoint(tmp_path / "evil.pth")
    other = models.create("fsrcnn")
    torch.save({**models.checkpoint_payload(other), "model_name": "srcnn", "model_kwargs": {}}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="do not fit srcnn"):
        models.load_checkpoint(tmp_path / "x.pth")
    with pytest.raises(ValueError, match="same architecture"):
        models.init_from_checkpoint(models.create("edsr_baseline"), good)


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    import lab.utils

    run = runs.create({}, root=tmp_path)
    run.save_checkpoint(models.checkpoint_payload(models.create("srcnn")), "last")
    before = run.checkpoint("last").read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lab.utils.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        run.save_checkpoint(models.checkpoint_payload(models.create("srcnn", num_feat=8)), "last")
    monkeypatch.undo()
    assert run.checkpoint("last").read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as e:
        run.fail(e)
    assert run.status == "failed"
    assert "No space left" in run.error["message"]
    models.load_checkpoint(run.checkpoint("last"))


def test_run_files_are_shared_by_the_team(tmp_path):
    run = runs.create({}, root=tmp_path)
    mode = (run.dir / "params.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~lab_umask(), oct(mode)


def lab_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a read-only mount")
def test_a_read_only_runs_folder_is_one_clear_line(tmp_path):
    """Root ignores permission bits, so the runs folder is made read-only by a bind mount in a private namespace."""
    root = tmp_path / "runs"
    runs.create({}, root=root, name="old").finish({})
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rm (a user and mount namespace) is not permitted on this machine")
    script = (f"mount --bind -o ro {root} {root} && {sys.executable} -m lab.cli note 1 'a note' ; "
              f"{sys.executable} -m lab.cli ledger --runs {root}")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "LAB_RUNS_DIR": str(root)})
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1, r.stderr
    assert "Read-only file system" in err[0], r.stderr
    assert err[0].startswith("lab note:"), r.stderr
    assert "0001-old" in r.stdout, "the ledger still reads the folder"


# -- data errors inside DataLoader workers, corrupt run files, folders given as images ----------------------------

def _folder_with_a_truncated_png(tmp_path):
    """Three good 64 px PNGs and one cut to its first half (its header intact, so only decoding finds it)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    for i in range(3):
        _png(folder, f"img{i}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = _png(tmp_path, "full.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).read_bytes()
    (folder / "trunc.png").write_bytes(full[: len(full) // 2])
    return folder


def _main_process_error(folder):
    with pytest.raises(ValueError) as e:
        read_image(folder / "trunc.png")
    return e.value


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_data_error_in_a_dataloader_worker_reads_as_in_the_main_process(tmp_path, workers):
    from lab.data import dataloaders
    from lab.images import DataError

    folder = _folder_with_a_truncated_png(tmp_path)
    dls = dataloaders(str(folder), scale=2, patch_size=12, batch_size=4, repeat=8, valid="builtin:chelsea",
                      valid_max_size=24, num_workers=workers, augment=False)
    with pytest.raises(DataError) as e:
        for _ in dls.train:
            pass
    assert str(e.value) == str(_main_process_error(folder))
    assert "trunc.png" in str(e.value)
    assert "DataLoader worker" not in str(e.value)


def test_other_loader_errors_pass_unchanged():
    from lab.data import from_worker

    plain = ValueError("not from a worker")
    assert from_worker(plain) is plain
    wrapped = KeyError("Caught KeyError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):"
                       "\n  File \"x.py\", line 1, in f\nKeyError: 'lr'\n")
    assert from_worker(wrapped).args == ("'lr'",)


@pytest.mark.slow
def test_lab_run_on_a_truncated_png_with_workers_exits_2_and_records_why(tmp_path, capsys):
    folder = _folder_with_a_truncated_png(tmp_path)
    argv = ["run", "train", "--runs", str(tmp_path / "runs"), "--quiet", "-p", "data", str(folder),
            "-p", "num_workers", "2", "-p", "model", "edsr_baseline", "-p", "model_kwargs",
            "{num_block: 1, num_feat: 8}", "-p", "epochs", "1", "-p", "repeat", "8", "-p", "patch_size", "12",
            "-p", "batch_size", "4", "-p", "eval_sets", "", "-p", "valid_max_size", "24", "-p", "profile_size", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    expected = f"DataError: {_main_process_error(folder)}"
    assert err[0].endswith(expected), err
    run = runs.find(1, tmp_path / "runs")
    assert run.status == "failed"
    assert run.error["message"] == str(_main_process_error(folder))


def test_read_image_of_a_folder_says_so(tmp_path):
    (tmp_path / "only_txt").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder, not an image file"):
        read_image(tmp_path / "only_txt")


@pytest.mark.parametrize("argv, file", [(["resume", "1"], "status.json"), (["rerun", "1"], "meta.json"),
                                        (["rerun", "1"], "params.json")], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_corrupt_run_file_is_named_by_run_and_file_with_the_fix(argv, file, root, capsys):
    run = runs.find(1, root)
    (run.dir / "meta.json").write_text('{"notebook": "train.ipynb"}')
    bad = run.dir / file
    cut = bad.read_text()[:-3]
    bad.write_text(cut)
    assert main([*argv, "--runs", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"run {run.name}: {file} is corrupt" in err[0]
    assert "move" in err[0]
    assert bad.read_text() == cut, "nothing rewritten"
    assert main(["ledger", "--runs", str(root)]) == 0
    assert f"skipped {run.name}: corrupt JSON in {file}" in capsys.readouterr().err
