"""Watching a running run from its runner: a line per validation, read from the run's history as it grows."""

from __future__ import annotations

import logging
import threading

from lab.runs import Run


def progress_line(rec: dict) -> str:
    """One validation of a running run as a line: epoch (step), losses and metrics, time since the fit began."""
    where = f"epoch {rec.get('epoch')}" + (f" step {rec['step']}" if rec.get("step") is not None else "")
    if rec.get("phase"):
        where = f"{rec['phase']} {where}"
    skip = {"epoch", "step", "phase", "lr", "elapsed_s", "train_s", "time"}
    vals = [f"{k} {v:.4g}" for k, v in rec.items() if k not in skip and isinstance(v, (int, float))]
    took = f"  ({rec['elapsed_s']:.0f} s)" if isinstance(rec.get("elapsed_s"), (int, float)) else ""
    return f"{where}: {', '.join(vals)}{took}"


def watch_history(run: Run, stop: threading.Event, every: float = 2.0) -> None:
    """Print each new validation of `run` (its history) until `stop` is set, then the last ones."""
    seen = 0
    while True:
        done = stop.wait(every)
        try:
            hist = run.history
        except ValueError:  # a history being replaced: read it at the next tick
            hist = []
        for rec in hist[seen:]:
            print(progress_line(rec), flush=True)
        seen = max(seen, len(hist))
        if done:
            return


class _Stdout(logging.Handler):
    """Each record on the current `sys.stdout` (read at each line, so a redirected stdout is followed)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), flush=True)


def show_notebook_output() -> None:
    """Print what the executing notebook prints (`lab run --log-output`): papermill hands a cell's output to its
    logger, which says nothing until given a handler."""
    log = logging.getLogger("papermill")
    if not any(isinstance(h, _Stdout) for h in log.handlers):
        log.addHandler(_Stdout())
    log.setLevel(logging.INFO)
