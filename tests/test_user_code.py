"""Your own architecture without editing lab/: a user module registers a model (and a loss), is copied into the
run, rebuilt from the copy; and the trust rule for code a run carries (refused until consented)."""

from __future__ import annotations

import json
import textwrap

import pytest
from notebook_helpers import _cell

from lab import cli, execute, ledger, runs, sweep, user_code
from lab.losses import LOSSES
from lab.models import MODELS

NET = textwrap.dedent('''
    import torch
    from torch import nn
    from lab.models import register_model
    from lab.losses import LOSSES


    class TinyNet(nn.Module):
        def __init__(self, scale=2, in_ch=3, out_ch=3, num_feat=WIDTH):
            super().__init__()
            self.scale, self.in_ch = scale, in_ch
            self.body = nn.Conv2d(in_ch, out_ch * scale * scale, 3, padding=1)
            self.up = nn.PixelShuffle(scale)

        def forward(self, x):
            return self.up(self.body(x))


    @register_model
    def NAME(scale: int = 2, **kw) -> TinyNet:
        return TinyNet(scale=scale, **kw)


    @LOSSES.register(name="NAME_l1")
    class MyL1(nn.Module):
        def forward(self, a, b):
            return (a - b).abs().mean()
''')


@pytest.fixture(autouse=True)
def trust_file(tmp_path, monkeypatch):
    path = tmp_path / "trusted.json"
    monkeypatch.setenv("LAB_TRUST_FILE", str(path))
    return path


def _module(path, name, width=8):
    path.write_text(NET.replace("NAME", name).replace("WIDTH", str(width)))
    return path


def test_a_user_module_registers_its_model_and_loss_and_is_copied_into_the_run(tmp_path):
    src = _module(tmp_path / "my_models.py", "user_net_a")
    run = runs.create({"model": "user_net_a"}, root=tmp_path / "runs")
    user_code.load(src, run)
    assert "user_net_a" in MODELS
    assert "user_net_a_l1" in LOSSES
    assert MODELS["user_net_a"](scale=2).body.out_channels == 12
    assert (run.dir / "code" / "my_models.py").read_text() == src.read_text()
    assert run.meta["code"]["entry"] == "my_models.py"
    assert ledger.load(tmp_path / "runs").iloc[0]["code"] == "my_models.py", "the ledger marks a run carrying code"
    _module(src, "user_net_a", width=16)  # changed and loaded again: the names are registered anew
    user_code.load(src)
    assert MODELS["user_net_a"](scale=2).body.in_channels == 3
    src.unlink()
    MODELS.unregister("user_net_a")
    LOSSES.unregister("user_net_a_l1")
    user_code.load_carried(run)  # rebuilt from the run's copy after the file is gone (your own code: trusted)
    assert "user_net_a" in MODELS


def test_a_file_that_fails_to_import_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import torch\n\nx = 1 / 0\n")
    with pytest.raises(ValueError, match=r"failed to import: ZeroDivisionError: division by zero \(line 3 of broken"):
        user_code.load(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        user_code.load(tmp_path / "nope.py")
    assert cli.main(["run", "train", "-p", "models_from", str(bad), "--runs", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists() or not runs.scan(tmp_path / "runs"), "no run is made"


def _code_notebook(path):
    params = 'model = "edsr"\nmodels_from = ""\nresume = ""\nrun_dir = ""\n'
    body = ('import lab.runs, lab.user_code\nrun = lab.runs.start({"model": model, "models_from": models_from}, '
            'run_dir=run_dir, name="code")\nif models_from:\n    lab.user_code.load(models_from, run)\n'
            'run.finish({"ok": 1})')
    path.write_text(json.dumps({"cells": [_cell(params, ["parameters"]), _cell(body)], "nbformat": 4,
                                "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3",
                                                                                 "display_name": "Python 3"}}}))
    return path


def test_someone_elses_run_code_is_refused_until_consent(tmp_path, trust_file, capsys):
    root = tmp_path / "runs"
    nb = _code_notebook(tmp_path / "code.ipynb")
    theirs = runs.create({"model": "their_net", "models_from": "/elsewhere/net.py"}, root=root, notebook=str(nb))
    theirs.update_meta(notebook_path=str(nb))
    files = {"net.py": _module(tmp_path / "their.py", "their_net").read_bytes()}
    theirs.save_code(files, "net.py", {"sha256": user_code.code_hash(files), "source": "/elsewhere/net.py"})
    theirs.finish({})
    with pytest.raises(ValueError, match="carries code you have not run"):
        sweep.rerun_job(theirs.id, root=root)
    assert cli.main(["rerun", str(theirs.id), "--runs", str(root)]) == 2
    assert "lab trust 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="carries code you have not run"):
        user_code.load_carried(theirs)  # what lab evaluate (lab.models.load_model) goes through
    assert "their_net" not in MODELS, "nothing of it ran"

    assert cli.main(["trust", str(theirs.id), "--runs", str(root)]) == 0
    assert "code/net.py" in capsys.readouterr().out
    job, _ = sweep.rerun_job(theirs.id, root=root)
    assert job.overrides["models_from"] == str(theirs.dir / "code" / "net.py"), "rebuilt from the copy"

    (theirs.dir / "code" / "net.py").write_text("import os\n")  # changed in the shared folder after consent
    with pytest.raises(ValueError, match="carries code you have not run"):
        sweep.rerun_job(theirs.id, root=root)
    job, _ = sweep.rerun_job(theirs.id, root=root, trust=True)  # --trust: consent given on the command line
    assert job.parent == theirs.id


@pytest.mark.slow
def test_a_user_model_trains_and_reruns_from_the_copy_after_the_file_is_deleted(tmp_path):
    from lab.execute import run_notebook

    src = _module(tmp_path / "my_models.py", "user_net_train")
    tiny = {"model": "user_net_train", "models_from": str(src), "data": "builtin:astronaut", "epochs": "1",
            "repeat": "4", "patch_size": "12", "batch_size": "4", "eval_sets": "", "seed": "3", "profile_size": "0",
            "loss": "user_net_train_l1"}
    run = run_notebook("train", tiny, root=tmp_path / "runs")
    assert run.status == "done", run.status_record.get("error")
    src.unlink()
    row = execute.run_job(sweep.rerun_job(run.id, root=tmp_path / "runs")[0])
    assert row["status"] == "done", row["error"]
    again = runs.Run(row["path"])
    assert again.metrics["valid_psnr_y"] == pytest.approx(run.metrics["valid_psnr_y"], abs=1e-6)
