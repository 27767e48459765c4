"""The train notebook end to end under papermill: a tiny run lands in the ledger; a failing one is recorded."""

import json
import math

import pytest

from lab import ledger
from lab.execute import run_notebook

TINY = {"model": "edsr_baseline", "model_kwargs": "{num_block: 1, num_feat: 8}", "data": "builtin:astronaut",
        "epochs": "1", "repeat": "8", "patch_size": "12", "batch_size": "4", "eval_sets": "", "seed": "3"}

pytestmark = pytest.mark.slow


def test_tiny_run_appears_in_ledger(tmp_path):
    run = run_notebook("train", TINY, name="tiny", root=tmp_path)
    st = run.read("status.json")
    assert st["status"] == "done", st.get("error")
    assert (run.dir / "notebook.ipynb").is_file()
    assert (run.dir / "checkpoints" / "final.pth").is_file()
    assert (run.dir / "samples" / "epoch_000.png").is_file()
    assert run.params["model_kwargs"] == {"num_block": 1, "num_feat": 8}
    assert "run_dir" not in run.params
    assert len(run.history) == 1
    assert "psnr_y" in run.history[0]
    df = ledger.load(tmp_path)
    row = df.iloc[0]
    assert row["status"] == "done"
    assert row["param.epochs"] == 1
    assert row["metric.valid_psnr_y"] > 15
    assert row["metric.valid_baseline"] == "bicubic"
    assert 15 < row["metric.valid_baseline_psnr_y"] < 60, "a finite baseline beside the score"


def test_failing_cell_recorded_as_failed(tmp_path):
    run = run_notebook("train", {**TINY, "model": "no_such_model"}, root=tmp_path)
    st = json.loads((run.dir / "status.json").read_text())
    assert st["status"] == "failed"
    assert st["error"]["type"] == "UnknownName", "the registry lookup's own error (a KeyError naming the known models)"
    assert "no_such_model" in st["error"]["message"]
    assert isinstance(st["error"]["cell"], int)
    nb = json.loads((run.dir / "notebook.ipynb").read_text())
    assert any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    assert ledger.load(tmp_path).loc[0, "status"] == "failed"


def test_training_knobs_gan_phase_and_history(tmp_path):
    """Soft clipping, EMA, the guard, mixup, a restart schedule and a loss sum, then a tiny adversarial phase."""
    knobs = {**TINY, "epochs": "2", "clip": "-0.1", "ema": "0.9", "mixup": "0.4", "schedule": "cosine_restarts",
             "schedule_kwargs": "{cycles: 2}", "loss": "l1 + 0.1*msssim(sigmas=[0.5, 1.0])", "opt": "adamw",
             "wd": "5e-5", "gan": "true", "gan_epochs": "1", "disc": "disc_simple", "disc_kwargs": "{num_feat: 8}",
             "gan_loss": "ragan", "conditional": "true", "critic_pretrain": "2", "profile_size": "16"}
    run = run_notebook("train", knobs, name="knobs", root=tmp_path)
    st = run.read("status.json")
    assert st["status"] == "done", st.get("error")
    hist = run.history
    assert [h.get("phase", "") for h in hist] == ["", "", "gan"]
    assert {"train_l1", "train_msssim"} <= set(hist[0])
    assert hist[1]["lr"] != hist[0]["lr"]
    assert all(math.isfinite(hist[2][k]) for k in ("gen_loss", "crit_loss", "psnr_y"))
    for f in ("checkpoints/last.pth", "checkpoints/gan_last.pth", "samples/gan_epoch_000.png", "profile.json"):
        assert (run.dir / f).is_file(), f
    assert run.params["clip"] == -0.1
    assert run.params["disc_kwargs"] == {"num_feat": 8}
    assert run.metrics["gan_minutes"] > 0
    assert run.metrics["gflops"] > 0


def test_two_process_ddp_run_from_the_notebook(tmp_path):
    run = run_notebook("train", {**TINY, "procs": "2"}, name="ddp", root=tmp_path)
    st = run.read("status.json")
    assert st["status"] == "done", st.get("error")
    assert len(run.history) == 1, "only rank 0 records"
    assert run.metrics["valid_psnr_y"] > 15


def test_deblur_run_in_steps_is_judged_on_its_degraded_inputs(tmp_path):
    import torch

    knobs = {**TINY, "scale": "1", "degradation": "deblur_motion", "steps": "6", "valid_every": "2",
             "valid_max_size": "48", "eval_sets": "builtin:coffee@deblur_motion", "num_workers": "0"}
    run = run_notebook("train", knobs, name="deblur", root=tmp_path)
    assert run.status == "done", run.error
    hist = run.history
    assert [h["step"] for h in hist] == [2, 4, 6]
    assert run.metrics["train_steps"] == 6
    m = run.metrics
    assert m["valid_baseline"] == "degraded input", "finite, meaningful"
    assert 15 < m["valid_baseline_psnr_y"] < 50, "finite, meaningful"
    assert m["builtin-coffee@deblur_motion_baseline"] == "degraded input"
    best = torch.load(run.checkpoint("best"), weights_only=True)
    assert best["psnr_y"] == max(h["psnr_y"] for h in hist), "best.pth follows the degraded validation score"
    assert run.read("data")["valid_degradation"]["preset"] == "deblur_motion"


def test_a_held_out_split_is_recorded_and_a_derived_run_validates_on_it(tmp_path):
    import torch

    from lab import derive, execute, runs

    split = {**TINY, "data": "builtin:astronaut,coffee,rocket,brick", "valid": "split:0.25; builtin:chelsea",
             "monitor": "chelsea_psnr_y", "repeat": "4", "valid_max_size": "64", "profile_size": "0"}
    run = run_notebook("train", split, name="split", root=tmp_path)
    assert run.status == "done", run.status_record.get("error")
    record = run.read("data")
    held = [im["file"] for im in record["valid_split"]["images"]]
    assert len(held) == 1
    assert record["sources"][0]["images"] == 3, "the held-out image is not among the training images"
    assert run.read("metrics")["valid_psnr_y"] > 10, "the final scores judge the held-out image"
    assert "chelsea_psnr_y" in run.history[-1], "the second validation set is a column of the history"
    assert run.read("metrics")["chelsea_psnr_y"] > 10, "and is scored whole after training"
    assert "chelsea_psnr_y" in torch.load(run.checkpoint("best"), weights_only=True), "it picked best.pth"
    job, _ = derive.derive_job(run.id, {"seed": "4"}, root=tmp_path)
    child = runs.Run(execute.run_job(job)["path"])
    assert child.status == "done", child.status_record.get("error")
    assert child.read("data")["valid_split"] == record["valid_split"], "a derived run validates on the same files"
