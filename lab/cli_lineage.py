"""The `lab` commands of runs made from runs: `lab run --from` (its part), `lab extend`, `lab log import`; and the
ledger in other trackers' formats (`lab export --tensorboard/--mlflow`, its part).

Each command imports what it needs when it runs, as in `lab.cli`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

TRUST_HELP = ("run the code the run carries (its own model file, copied into it) even if you have not run it "
              "before: read it first (lab trust RUN lists it)")


def cmd_trust(a: argparse.Namespace) -> int:
    """`lab trust 42`: list the code run 42 carries and add its hash to your trust list."""
    from lab.runs import find
    from lab.user_code import carried, check_trust, trust_file

    run = find(a.run_id, a.runs)
    got = carried(run)
    if got is None:
        print(f"run {run.name} carries no code")
        return 0
    rec, digest = got
    for f in rec["files"]:
        print(f"  {run.dir / 'code' / f}")
    print(f"sha256 {digest} (copied from {rec.get('source')})")
    if digest != rec.get("sha256"):
        print("warning: the files changed since the run copied them (the hash differs from its record)",
              file=sys.stderr)
    check_trust(run, trust=True)
    print(f"trusted: lab rerun {run.id} and lab evaluate of it will run this code ({trust_file()})")
    return 0


def run_derived(a: argparse.Namespace, changes: dict[str, str]) -> dict[str, Any]:
    """`lab run --from 42 -p norm none`: run 42's recorded params with the changes on top, parent = 42; returns the
    finished job's row."""
    from lab.derive import derive_job
    from lab.execute import run_job

    if a.spec:
        raise ValueError("--from and --spec both say where the params start; give one")
    job, warns = derive_job(a.from_run, changes, root=a.runs, name=a.name, cell_timeout=a.timeout, trust=a.trust)
    if a.notebook and Path(job.notebook).stem != Path(a.notebook).stem:
        raise ValueError(f"run {a.from_run} was made by notebook {Path(job.notebook).name}, not {a.notebook!r}")
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    print(f"deriving from run {job.parent}: {job.meta['changes'] or 'no changes'}", file=sys.stderr)
    return run_job(job)


def extend(a: argparse.Namespace) -> dict[str, Any]:
    """`lab extend 43 --steps N`: run 43 carried on as a new run; returns the finished job's row."""
    from lab.derive import extend_job
    from lab.execute import run_job

    job, warns = extend_job(a.run_id, a.steps, root=a.runs, timeout=a.timeout, cell_timeout=a.cell_timeout,
                            trust=a.trust)
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    ext = job.meta["extended_from"]
    print(f"extending run {ext['run']} from step {ext['steps_before']} to {a.steps} ({ext['checkpoint']})",
          file=sys.stderr)
    return run_job(job)


def _ranges(text: str | None) -> list[tuple[float, float]] | None:
    """`20-43,100-115` -> [(20, 43), (100, 115)]; a single number is a range of one."""
    if not text:
        return None
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            out.append((float(lo), float(hi or lo)))
        except ValueError:
            raise ValueError(f"--entries {text!r}: expected ranges of entry numbers like 20-43,100-115") from None
    return out


def cmd_log(a: argparse.Namespace) -> int:
    from lab.logimport import import_log, summary_line, to_yaml
    from lab.sweep import load_spec
    from lab.utils import atomic_write_text

    text = Path(a.log).read_text(encoding="utf-8")
    base = dict(load_spec(a.base)["base"]) if a.base else {}
    name = a.name or Path(a.log).stem
    spec, summary = import_log(text, log=name, ranges=_ranges(a.entries), base=base, factor=a.scale)
    header = (f"Lineage spec imported from {Path(a.log).name}" + (f" (entries {a.entries})" if a.entries else "") +
              (f"; base params from the {a.base!r} spec" if a.base else "") +
              f"; CPU scale: step counts divided by {a.scale} when run")
    out = Path(a.out or f"{name}.yaml")
    atomic_write_text(out, to_yaml(spec, summary, header))
    print(summary_line(summary))
    for d in spec["entries"]:
        for line in d.get("_unmapped", []):
            print(f"  unmapped, {d['note'].split(':')[0]}: {line}")
    print(f"wrote {out}; check it with `lab sweep {out} --dry-run`")
    return 0


def export_tracking(a: argparse.Namespace, df: Any) -> int:
    """`lab export --tensorboard DIR` / `--mlflow URI`: the runs of the (filtered) ledger in those formats."""
    from lab.runs import Run
    from lab.tracking_export import to_mlflow, to_tensorboard

    chosen = [Run(p) for p in df["path"]] if not df.empty else []
    if a.tensorboard:
        to_tensorboard(chosen, a.tensorboard)
        print(f"wrote {len(chosen)} runs as TensorBoard event files to {a.tensorboard} "
              f"(tensorboard --logdir {a.tensorboard})")
    if a.mlflow:
        to_mlflow(chosen, a.mlflow)
        print(f"logged {len(chosen)} runs to MLflow at {a.mlflow} (experiment 'restoration-lab')")
    return 0


def add_commands(sub: Any, seconds: Callable[[str], float], print_job: Callable[[dict[str, Any]], int]) -> None:
    """Add `lab extend` and `lab log` to the `lab` parser's subcommands (`print_job` reports a finished run)."""
    xt = sub.add_parser("extend", help="carry a finished run on to a larger step budget: a new run (parent = it) "
                        "from its last checkpoint, its LR schedule continued (one-cycle and cosine refused)")
    xt.add_argument("run_id", help="run number (42) or directory name")
    xt.add_argument("--steps", type=int, required=True, help="the new total step budget (more than the run's)")
    xt.add_argument("--runs", help="runs directory")
    xt.add_argument("--timeout", type=seconds, help="whole-run timeout in seconds")
    xt.add_argument("--cell-timeout", type=seconds, help="per-cell timeout in seconds")
    xt.add_argument("--trust", action="store_true", help=TRUST_HELP)
    xt.set_defaults(fn=lambda a: print_job(extend(a)))

    lg = sub.add_parser("log", help="import a hand-kept experiment log (## entries, key: value lines, A => B, "
                        "(same as ##67)) into a lineage spec for lab sweep")
    lg.add_argument("action", choices=("import",), help="import: write the spec and print what mapped")
    lg.add_argument("log", help="the log file (Markdown or text)")
    lg.add_argument("--out", help="the spec to write (default: <log name>.yaml here)")
    lg.add_argument("--entries", help="keep entries in these number ranges, e.g. 20-43,100-115")
    lg.add_argument("--base", help="a sweep spec whose base params the lineage starts from (e.g. deblur)")
    lg.add_argument("--scale", type=int, default=1, help="CPU scale: divide the step counts by this when run")
    lg.add_argument("--name", help="the log's name in the entries' notes (default: the file's stem)")
    lg.set_defaults(fn=cmd_log)

    tr = sub.add_parser("trust", help="list the code a run carries (its own model file) and consent to run it "
                        "(lab rerun, lab evaluate, lab run --from)")
    tr.add_argument("run_id", help="run number (42) or directory name")
    tr.add_argument("--runs", help="runs directory")
    tr.set_defaults(fn=cmd_trust)
