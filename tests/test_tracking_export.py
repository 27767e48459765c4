"""`lab export --tensorboard` / `--mlflow`: what a reader of each format finds (TensorBoard's event accumulator, an
MLflow client on a local file store)."""

from __future__ import annotations

import pytest

from lab import cli, runs


def _two_runs(root):
    a = runs.create({"model": "edsr", "lr": 1e-3, "model_kwargs": {"num_block": 2}}, root=root, name="a")
    for epoch, step, loss, psnr in ((0, 10, 0.5, 20.0), (1, 20, 0.25, 22.5)):
        a.log_epoch({"epoch": epoch, "step": step, "train_loss": loss, "psnr_y": psnr, "lr": 1e-3 / (epoch + 1)})
    a.finish({"valid_psnr_y": 22.5, "set5_psnr_y": 30.25})
    b = runs.create({"model": "edsr", "lr": 5e-4}, root=root, name="b", parent=a.id)
    b.log_epoch({"epoch": 0, "step": 10, "train_loss": 0.75, "psnr_y": 19.0})
    b.fail("boom")
    return a, b


def test_tensorboard_event_files_hold_history_params_and_final_metrics(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install restoration-lab[tracking])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    a, b = _two_runs(tmp_path / "runs")
    out = tmp_path / "tb"
    assert cli.main(["export", "--tensorboard", str(out), "--runs", str(tmp_path / "runs")]) == 0
    assert "wrote 2 runs" in capsys.readouterr().out
    acc = EventAccumulator(str(out / a.name), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    psnr = acc.Scalars("psnr_y")
    assert [e.step for e in psnr] == [10, 20]
    assert [e.value for e in psnr] == pytest.approx([20.0, 22.5])
    assert "params" in str(acc.Tags()["tensors"])
    hp = EventAccumulator(str(out / a.name), size_guidance={"tensors": 0})  # add_hparams: final metrics as scalars
    hp.Reload()
    assert hp.Scalars("final/set5_psnr_y")[0].value == pytest.approx(30.25)
    acc_b = EventAccumulator(str(out / b.name))
    acc_b.Reload()
    assert [e.value for e in acc_b.Scalars("train_loss")] == pytest.approx([0.75])


def test_mlflow_store_holds_params_metric_steps_and_lab_tags(tmp_path):
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install restoration-lab[tracking])")
    from mlflow.tracking import MlflowClient

    a, b = _two_runs(tmp_path / "runs")
    uri = f"file:{tmp_path / 'mlruns'}"
    for _ in range(2):  # exporting again replaces, never duplicates
        assert cli.main(["export", "--mlflow", uri, "--runs", str(tmp_path / "runs")]) == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("restoration-lab")
    found = {r.data.tags["lab_run"]: r for r in client.search_runs([exp.experiment_id])}
    assert sorted(found) == [a.name, b.name]
    ra = found[a.name]
    assert ra.data.params["lr"] == "0.001"
    assert ra.data.params["model_kwargs"] == '{"num_block": 2}'
    assert ra.data.metrics["final_set5_psnr_y"] == pytest.approx(30.25)
    hist = client.get_metric_history(ra.info.run_id, "psnr_y")
    assert [(m.step, m.value) for m in hist] == [(10, 20.0), (20, 22.5)]
    assert found[b.name].data.tags["lab_parent"] == str(a.id)
    assert found[b.name].info.status == "FAILED"
