"""The ledger in the ecosystem's tracking formats: every run's history (a scalar per recorded epoch, at its step),
params and final metrics written as TensorBoard event files (`lab export --tensorboard DIR`) or logged to an MLflow
tracking store (`lab export --mlflow URI`), so a user who lives in those tools sees the lab's runs there.

Both packages are optional (`pip install restoration-lab[tracking]`); each exporter imports its own when called.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from lab.runs import Run

EXPERIMENT = "restoration-lab"


def _numbers(d: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a flat record (bools and text left out)."""
    return {k: float(v) for k, v in d.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def _plain(v: Any) -> Any:
    """A param as a value the trackers store: numbers, bools and strings as they are, the rest as JSON text."""
    return v if isinstance(v, (int, float, str, bool)) else json.dumps(v, default=str)


def history_scalars(run: Run) -> list[tuple[str, float, int]]:
    """(tag, value, step) of every number in the run's history: `train_loss`, `valid_loss`, `psnr_y`, `lr` ...;
    the adversarial phase's as `gan/<name>`; the step is the record's optimizer step, else its epoch."""
    out = []
    for rec in run.history:
        step = rec.get("step") if isinstance(rec.get("step"), int) else rec.get("epoch", 0)
        prefix = f"{rec['phase']}/" if rec.get("phase") else ""
        for k, v in _numbers(rec).items():
            if k not in ("epoch", "step"):
                out.append((prefix + k, v, int(step)))
    return out


def _missing(package: str, extra: str = "tracking") -> ImportError:
    return ImportError(f"{package} is not installed; pip install {package} (or restoration-lab[{extra}])")


def to_tensorboard(run_list: Iterable[Run], logdir: str | os.PathLike) -> list[Path]:
    """One event-file folder per run under `logdir` (named as the run): its history as scalars, its params and final
    metrics as hyperparameters (TensorBoard's HParams tab) and its params as text; returns the folders."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise _missing("tensorboard") from None
    made = []
    for run in run_list:
        folder = Path(logdir) / run.name
        with SummaryWriter(log_dir=str(folder)) as w:
            for tag, value, step in history_scalars(run):
                w.add_scalar(tag, value, step)
            params = {k: _plain(v) for k, v in run.params.items()}
            w.add_text("params", "\n".join(f"    {k} = {v!r}" for k, v in params.items()))
            final = {f"final/{k}": v for k, v in _numbers(run.metrics).items()}
            if final:
                w.add_hparams({k: v for k, v in params.items()}, final, run_name=".")
        made.append(folder)
    return made


def to_mlflow(run_list: Iterable[Run], uri: str, experiment: str = EXPERIMENT) -> list[str]:
    """Each run as an MLflow run of `experiment` in the tracking store at `uri` (`file:./mlruns`, `sqlite:///x.db`, a
    server; `sqlite:` needs the full `mlflow` package): params (long values cut at MLflow's limit), the history as metric steps, the final metrics, the lab's
    run id, status and parent as tags; a run exported before is updated, not duplicated. Returns the MLflow ids."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise _missing("mlflow-skinny") from None
    if uri.startswith("file:"):  # MLflow 3 keeps its file store only on request; a local folder is what was asked
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    ids = []
    for run in run_list:
        found = client.search_runs([exp_id], filter_string=f"tags.lab_run = '{run.name}'")
        if found:
            client.delete_run(found[0].info.run_id)  # params cannot be overwritten: the fresh copy replaces it
        meta = run.meta
        tags = {"lab_run": run.name, "lab_id": str(run.id), "lab_status": str(run.status),
                "mlflow.runName": str(meta.get("title") or run.name)}
        if meta.get("parent") is not None:
            tags["lab_parent"] = str(meta["parent"])
        r = client.create_run(exp_id, tags=tags)
        for k, v in run.params.items():
            client.log_param(r.info.run_id, k, str(_plain(v))[:6000])
        for tag, value, step in history_scalars(run):
            client.log_metric(r.info.run_id, tag.replace("/", "_"), value, step=step)
        for k, v in _numbers(run.metrics).items():
            client.log_metric(r.info.run_id, f"final_{k}", v)
        client.set_terminated(r.info.run_id, "FINISHED" if run.status == "done" else "FAILED")
        ids.append(r.info.run_id)
    return ids
