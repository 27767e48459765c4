"""The `lab` command: run notebooks as recorded runs and read the ledger."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _overrides(pairs: Sequence[Sequence[str]] | None) -> dict[str, str]:
    return {k: v for k, v in (pairs or [])}


def cmd_run(a: argparse.Namespace) -> int:
    from lab.sweep import run_notebook

    run = run_notebook(a.notebook, _overrides(a.param), name=a.name, root=a.runs, timeout=a.timeout,
                       log_output=a.log_output)
    status = run.read("status.json", {})
    print(f"{run.name}: {status.get('status')}  ({run.dir})")
    if status.get("status") != "done":
        err = status.get("error") or {}
        cell = f" in cell {err['cell']}" if err.get("cell") is not None else ""
        print(f"error{cell}: {err.get('type', '')}: {err.get('message', '')}", file=sys.stderr)
        print(f"the executed notebook is kept at {run.dir / 'notebook.ipynb'}", file=sys.stderr)
        return 1
    return 0


def cmd_ledger(a: argparse.Namespace) -> int:
    import pandas as pd

    from lab import ledger

    df = ledger.load(a.runs)
    if df.empty:
        print(f"no runs in {a.runs or 'runs/'}")
        return 0
    if a.last:
        df = df.tail(a.last)
    out = df if a.all else ledger.view(df, a.columns.split(",") if a.columns else ledger.DEFAULT_VIEW)
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.precision", 3):
        print(out.to_string(index=False))
    for pr in df.attrs.get("problems", []):
        print(f"skipped {pr['run']}: {pr['problem']}", file=sys.stderr)
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from lab.models import list_models

    print("\n".join(list_models(a.pattern)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `lab` command."""
    p = argparse.ArgumentParser(prog="lab", description="Restoration Lab: recorded, rerunnable restoration experiments.")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="execute a notebook (papermill) as a new run")
    r.add_argument("notebook", help="notebook name in notebooks/ (e.g. train) or a path")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
    r.add_argument("--name", help="run title (default: the 'name' parameter or the model)")
    r.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    r.add_argument("--timeout", type=float, help="per-cell timeout in seconds")
    r.add_argument("--log-output", action="store_true", help="stream the notebook's output here")
    r.set_defaults(fn=cmd_run)

    led = sub.add_parser("ledger", help="print the results ledger")
    led.add_argument("--runs", help="runs directory")
    led.add_argument("--columns", help="comma-separated columns to show")
    led.add_argument("--all", action="store_true", help="show every column")
    led.add_argument("--last", type=int, help="only the last N runs")
    led.set_defaults(fn=cmd_ledger)

    m = sub.add_parser("models", help="list registered models")
    m.add_argument("pattern", nargs="?", default="")
    m.set_defaults(fn=cmd_models)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lab` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (KeyError, ValueError, FileNotFoundError) as e:
        print(f"lab {args.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
