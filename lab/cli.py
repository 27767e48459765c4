"""The `lab` command: run notebooks as recorded runs, sweep and rerun them, read, annotate and export the ledger.

Each command imports what it needs when it runs, so `lab ledger` or `lab note` start without torch or fastai.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

from lab import cli_lineage, cli_media, vocab
from lab.runs import Run
from lab.workspace import split_jupyter_args


def _overrides(pairs: Sequence[Sequence[str]] | None) -> dict[str, str]:
    return {k: v for k, v in (pairs or [])}


# a failed run whose recorded error is one of these failed on the user's input (a bad data file), not in the lab
INPUT_ERRORS = ("DataError", "FileNotFoundError", "IsADirectoryError", "NotADirectoryError")


def _failed_exit(err: dict) -> int:
    """The exit code of a run that did not finish: 2 when its data was bad, else 1."""
    return 2 if err.get("type") in INPUT_ERRORS else 1


def cmd_run(a: argparse.Namespace) -> int:
    import threading

    from lab.checks import check_names
    from lab.execute import execute_run, prepare_run
    from lab.params import notebook_path, resolve
    from lab.sweep import load_spec
    from lab.watch import show_notebook_output, watch_history

    overrides = _overrides(a.param)
    if a.from_run is not None:
        return _print_job(cli_lineage.run_derived(a, overrides))
    if not a.notebook:
        raise ValueError("lab run needs a notebook (e.g. `lab run train`) or --from RUN")
    if a.spec:  # a spec's base params (e.g. the demo's), -p on top
        spec = load_spec(a.spec)
        if spec["notebook"] != a.notebook and notebook_path(spec["notebook"]) != notebook_path(a.notebook):
            raise ValueError(f"spec {a.spec!r} is for notebook {spec['notebook']!r}, not {a.notebook!r}; run "
                             f"`lab run {spec['notebook']} --spec {a.spec}`")
        overrides = {**spec["base"], **overrides}
    check_names(resolve(notebook_path(a.notebook), overrides))  # before any run directory is made

    run, nb_path, params = prepare_run(a.notebook, overrides, name=a.name, root=a.runs)
    if a.log_output:
        show_notebook_output()
    watch = not a.quiet  # the notebook's output shows training as HTML bars only: the lines say how it goes
    if not a.quiet:
        print(f"{run.name}: running in {run.dir}" + ("; a line per validation follows (--quiet: none)" if watch
                                                     else ""), flush=True)
    stop = threading.Event()
    watcher = threading.Thread(target=watch_history, args=(run, stop), daemon=True) if watch else None
    if watcher:
        watcher.start()
    try:
        run = execute_run(run, nb_path, params, timeout=a.timeout, log_output=a.log_output)
    finally:
        stop.set()
        if watcher:
            watcher.join(10)
    status = run.status_record
    for line in run.metrics.get("eval_skipped", []):
        print(f"warning: {line}", file=sys.stderr)
    print(f"{run.name}: {status.get('status')}  ({run.dir})")
    if status.get("status") != "done":
        err = status.get("error") or {}
        cell = f" in cell {err['cell']}" if err.get("cell") is not None else ""
        first = (str(err.get("message", "")).strip().splitlines() or [""])[0]
        print(f"error{cell}: {err.get('type', '')}: {first}", file=sys.stderr)
        print(f"the executed notebook is kept at {run.notebook}", file=sys.stderr)
        return _failed_exit(err)
    return 0


def _print_job(row: dict) -> int:
    """Print one finished job's line (and its error); exit code 0 when done."""
    print(f"{row.get('name')}: {row['status']}  ({row.get('path')})")
    if row["status"] != "done":
        cell = f" in cell {row['error_cell']}" if row.get("error_cell") is not None else ""
        print(f"error{cell}: {row.get('error')}", file=sys.stderr)
        if row.get("path"):
            print(f"the executed notebook is kept at {Run(row['path']).notebook}", file=sys.stderr)
        return _failed_exit({"type": str(row.get("error") or "").split(":", 1)[0]})
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    import pandas as pd

    from lab.sweep import sweep, tls_security

    if bool(a.tls_ca_file) != bool(a.tls_cert):
        raise ValueError("a TLS Dask cluster needs both --tls-ca-file and --tls-cert (and --tls-key unless the "
                         "certificate file holds the key)")
    security = tls_security(a.tls_ca_file, a.tls_cert, a.tls_key) if a.tls_ca_file else None
    from lab.derive import is_lineage_spec, run_lineage

    if is_lineage_spec(a.spec):  # entries derived from one another: one at a time, in dependency order
        if a.dask or (a.workers or 1) > 1:
            print("a lineage spec runs its entries one after another (each derives from a finished run); "
                  "--workers/--dask ignored", file=sys.stderr)
        table = run_lineage(a.spec, root=a.runs, timeout=a.timeout, dry_run=a.dry_run)
    else:
            table = sweep(a.spec, workers=a.workers, dask=a.dask, root=a.runs, timeout=a.timeout, dry_run=a.dry_run,
                      progress=not a.no_progress, security=security)
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.precision", 3,
                           "display.max_colwidth", 80):
        print(table.to_string(index=False) if not table.empty else "no runs in this sweep")
    if a.dry_run:
        print(f"{len(table)} run(s) planned (dry run: nothing executed)")
        return 0
    if a.csv:
        from lab.utils import atomic_write_text

        atomic_write_text(a.csv, table.to_csv(index=False))
    bad = int((table["status"] != "done").sum()) if not table.empty else 0
    print(f"{len(table) - bad}/{len(table)} runs done" + (f", {bad} not done (see errors above)" if bad else ""))
    return 1 if bad else 0


def cmd_rerun(a: argparse.Namespace) -> int:
    from lab.execute import run_job
    from lab.sweep import rerun_job

    job, warns = rerun_job(a.run_id, root=a.runs, timeout=a.timeout, cell_timeout=a.cell_timeout, trust=a.trust)
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    print(f"rerunning run {a.run_id} as {job.name!r} (parent={job.parent})", file=sys.stderr)
    return _print_job(run_job(job))


def cmd_resume(a: argparse.Namespace) -> int:
    from lab.execute import run_job
    from lab.sweep import resume_job

    job = resume_job(a.run_id, root=a.runs, checkpoint=a.checkpoint, timeout=a.timeout,
                     cell_timeout=a.cell_timeout, force=a.force, changes=_overrides(a.param))
    print(f"resuming {job.run_dir} from {job.extra_params['resume']}", file=sys.stderr)
    return _print_job(run_job(job))


def cmd_note(a: argparse.Namespace) -> int:
    from lab import ledger, runs

    if a.list or not (a.text or a.tag or a.untag or a.verdict is not None):
        recs = runs.read_notes(a.run_id, a.runs)
        for r in recs:
            bits = [r.get("time", "")]
            if r.get("text"):
                bits.append(repr(r["text"]))
            if r.get("tags"):
                bits.append("+" + " +".join(r["tags"]))
            if r.get("untag"):
                bits.append("-" + " -".join(r["untag"]))
            if "verdict" in r:
                bits.append(f"verdict={r['verdict'] or '(cleared)'}")
            print("  ".join(bits))
        s = ledger.summarize_notes(recs)
        print(f"tags: {s['tags'] or '-'}; verdict: {s['verdict'] or '-'}")
        return 0
    runs.add_note(a.run_id, a.text or "", tags=a.tag or (), untag=a.untag or (), verdict=a.verdict, root=a.runs)
    s = ledger.summarize_notes(runs.read_notes(a.run_id, a.runs))
    print(f"run {a.run_id}: tags {s['tags'] or '-'}; verdict {s['verdict'] or '-'}")
    return 0


def _filtered(a: argparse.Namespace):
    from lab import ledger

    df = ledger.load(a.runs, baseline=a.baseline, warn=False)
    for pr in df.attrs.get("problems", []):
        print(f"skipped {pr['run']}: {pr['problem']}", file=sys.stderr)
    return ledger.filter_runs(df, status=a.status, tag=a.tag, verdict=a.verdict, last=a.last)


def cmd_export(a: argparse.Namespace) -> int:
    from lab import report

    if a.study:
        from lab.studies.report import write_report

        path = write_report(a.study, a.path, root=a.runs, profile=a.profile)
        print(f"wrote study {a.study!r} to {path} (plots beside it)")
        return 0
    df = _filtered(a)
    if a.tensorboard or a.mlflow:
        return cli_lineage.export_tracking(a, df)
    if not a.path:
        raise ValueError("lab export needs an output file (log.md, runs.csv, report.html), --tensorboard DIR or "
                         "--mlflow URI")
    path = report.export(df, a.path, a.format)
    print(f"wrote {len(df)} runs to {path}")
    return 0


def cmd_ledger(a: argparse.Namespace) -> int:
    import pandas as pd

    from lab import ledger

    df = _filtered(a)
    if a.lineage is not None:
        from lab.lineage import format_lineage, lineage_table

        print(format_lineage(lineage_table(df, a.lineage)))
        return 0
    if df.empty:
        from lab.runs import runs_dir

        print(f"no runs in {runs_dir(a.runs)}" + (" matching the filters" if (a.status or a.tag or a.verdict) else ""))
        return 0
    columns = [c.strip() for c in a.columns.split(",") if c.strip()] if a.columns else None
    out = df if a.all else ledger.view(df, columns or ledger.DEFAULT_VIEW, strict=columns is not None)
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.precision", 3):
        print(out.astype(object).where(out.notna(), "").to_string(index=False))
    return 0


def cmd_study(a: argparse.Namespace) -> int:
    import pandas as pd

    from lab import studies
    from lab.studies.budget import budget_table

    if not a.name:
        for name in studies.list_studies():
            st = studies.load_study(name)["study"]
            took = f"{st['cpu_minutes']} min" if st.get("cpu_minutes") else "to be measured"
            print(f"{name}: {' '.join(st['question'].split())}  (CPU wall time: {took})")
        print("run one with: lab study <name> [--dry-run] [--workers 2] [--profile full]")
        return 0
    res = studies.run_study(a.name, workers=a.workers, profile=a.profile, root=a.runs, dry_run=a.dry_run,
                            fresh=a.fresh, progress=not a.no_progress, timeout=a.timeout)
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.precision", 3,
                           "display.max_colwidth", 60):
        if a.dry_run:
            print(studies.plan_table(res.jobs, res.reused).to_string(index=False))
            cost = budget_table(res.jobs, studies.load_study(a.name))
            if cost is not None:
                print(cost.attrs["line"])
                print(cost.to_string(index=False))
            print(f"{len(res.jobs)} run(s) planned, {len(res.reused)} already done and reused (dry run: nothing "
                  "executed)" + ("; --fresh runs them again" if res.reused else ""))
            return 0
        print(res.answer.to_string(index=False))
    if res.reused:
        print(f"reused {len(res.reused)} finished run(s) of this study with the same params "
              f"({', '.join(f'#{i}' for i in res.reused.values())}); --fresh runs them again")
    bad = [r for r in res.rows if r["status"] != "done"]
    for r in bad:
        print(f"{r.get('title') or r['name']}: {r['status']}: {r.get('error')}", file=sys.stderr)
    print(f"verdict: {res.verdict}")
    print(f"{len(res.rows)} run(s) in {res.minutes:.1f} min wall time; the runs carry the tag {a.name!r} "
          f"(lab ledger --tag {a.name}); report: lab export {a.name}.md --study {a.name}")
    return 1 if bad else 0


def cmd_models(a: argparse.Namespace) -> int:
    from lab.models import list_models

    print("\n".join(list_models(a.pattern)))
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from lab.bench import DEFAULT_MODELS, OtherRunsActive, parse_sections, run_bench, table, write_report

    sections = parse_sections(a.what)
    png = a.png or os.path.splitext(a.json)[0] + "_p4.png"
    try:
        report = run_bench(sections, quick=a.quick, png=png, force=a.force, runs_root=a.runs,
                           models=a.models.split(",") if a.models else DEFAULT_MODELS,
                           data_images=a.data_images, threads=a.threads)
    except OtherRunsActive as e:
        print(f"lab bench: {e}", file=sys.stderr)
        return 2
    path = write_report(report, a.json)
    print(table(report))
    print(f"\nfull results: {path}" + (f"; quality curve: {png}" if "P4" in sections else ""))
    return 0


def cmd_data(a: argparse.Namespace) -> int:
    from lab import imcache, prepare

    if a.action == "frames":
        return cli_media.data_frames(a)
    if a.action == "cache":
        if a.clear:
            print(f"removed {imcache.clear()} cached images from {imcache.cache_root()}")
            return 0
        if not a.folder:
            raise ValueError("lab data cache needs a folder of images (or --clear)")
        got = imcache.build(a.folder, progress=not a.no_progress)
        print(f"{a.folder}: {got['cached']} images decoded into {imcache.cache_root()}, {got['skipped']} already "
              f"there ({got['bytes'] / 2**30:.2f} GiB); train with -p disk_cache true")
        return 0
    if not (a.folder and a.out):
        raise ValueError("lab data prepare needs a source folder and an output folder: "
                         "lab data prepare DIV2K_train_HR data/div2k_sub --crop 480 --step 240")
    got = prepare.prepare(a.folder, a.out, a.crop, a.step, a.thresh, progress=not a.no_progress)
    small = f"; skipped {len(got['skipped_small'])} smaller than {a.crop}px" if got["skipped_small"] else ""
    print(f"{got['images']} images -> {got['crops']} crops in {a.out} ({got['written']} written now{small}); "
          f"train with -p data {a.out}")
    return 0


def cmd_jupyter(a: argparse.Namespace) -> NoReturn:
    from lab.runs import runs_dir
    from lab.workspace import WORK_DIR, open_jupyter

    open_jupyter(a.dir or WORK_DIR, runs_dir(), a.jupyter_args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `lab` command."""
    from lab import __version__

    p = argparse.ArgumentParser(prog="lab", description="Restoration Lab: recorded, rerunnable restoration experiments.")
    p.add_argument("--version", action="version", version=f"lab (restoration-lab) {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="execute a notebook (papermill) as a new run")
    r.add_argument("notebook", nargs="?", help="notebook name in notebooks/ (e.g. train) or a path (with --from: "
                   "the parent's)")
    r.add_argument("--from", dest="from_run", metavar="RUN", help="start from this run's recorded params (-p changes "
                   "them; `norm` or `model_kwargs.norm` reach the model's keywords); the run records it as parent")
    r.add_argument("--trust", action="store_true", help="with --from: " + cli_lineage.TRUST_HELP)
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
    r.add_argument("--name", help="run title (default: the 'name' parameter or the model)")
    r.add_argument("--spec", help="start from the base params of a sweep spec in notebooks/sweeps/ (e.g. demo); "
                   "-p overrides them")
    r.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    r.add_argument("--timeout", type=seconds, help="per-cell timeout in seconds")
    r.add_argument("--log-output", action="store_true", help="stream the notebook's output here too (cells, "
                   "prints, tables; training shows as the validation lines)")
    r.add_argument("-q", "--quiet", action="store_true", help="print only the run's result line")
    r.set_defaults(fn=cmd_run)

    sw = sub.add_parser("sweep", help="run every combination of a sweep spec (YAML), each in its own process")
    sw.add_argument("spec", help="a YAML file, or a name in notebooks/sweeps/ (e.g. loss)")
    sw.add_argument("--workers", type=int, help="runs at a time on this machine (default: the spec's, else 1)")
    sw.add_argument("--dask", metavar="ADDRESS", help="dispatch to a Dask scheduler, e.g. tcp://host:8786 "
                    "(workers need this repo and a shared runs directory)")
    sw.add_argument("--tls-ca-file", help="TLS Dask cluster: the CA certificate (PEM)")
    sw.add_argument("--tls-cert", help="TLS Dask cluster: this client's certificate (PEM)")
    sw.add_argument("--tls-key", help="TLS Dask cluster: this client's private key (PEM), if not in the certificate")
    sw.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    sw.add_argument("--timeout", type=seconds, help="per-run timeout in seconds (default: the spec's, else none)")
    sw.add_argument("--dry-run", action="store_true", help="list the runs without executing them")
    sw.add_argument("--csv", help="also write the summary table to this CSV file")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(fn=cmd_sweep)

    rr = sub.add_parser("rerun", help="execute a run again with exactly its recorded params (parent = that run)")
    rr.add_argument("run_id", help="run number (42) or directory name")
    rr.add_argument("--runs", help="runs directory")
    rr.add_argument("--timeout", type=seconds, help="whole-run timeout in seconds")
    rr.add_argument("--cell-timeout", type=seconds, help="per-cell timeout in seconds")
    rr.add_argument("--trust", action="store_true", help=cli_lineage.TRUST_HELP)
    rr.set_defaults(fn=cmd_rerun)

    rs = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint, in its directory")
    rs.add_argument("run_id", help="run number (42) or directory name")
    rs.add_argument("--runs", help="runs directory")
    rs.add_argument("--checkpoint", help="checkpoint to continue from (default: the run's last one)")
    rs.add_argument("--timeout", type=seconds, help="whole-run timeout in seconds")
    rs.add_argument("--cell-timeout", type=seconds, help="per-cell timeout in seconds")
    rs.add_argument("--force", action="store_true", help="resume even a run marked done or still running")
    rs.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help="change lr, schedule "
                    "or schedule_kwargs from the checkpoint on (recorded in the meta's param_changes with its step)")
    rs.set_defaults(fn=cmd_resume)

    cli_lineage.add_commands(sub, seconds, _print_job)

    no = sub.add_parser("note", help="attach a note, tags or a verdict to a run (no text: list its notes)")
    no.add_argument("run_id", help="run number (42) or directory name")
    no.add_argument("text", nargs="?", help="free text, e.g. \"lines smeared\"")
    no.add_argument("--tag", action="append", help="add a tag (repeatable)")
    no.add_argument("--untag", action="append", help="remove a tag (repeatable)")
    no.add_argument("--verdict", help="e.g. chosen, rejected, baseline; \"\" clears it")
    no.add_argument("--list", action="store_true", help="print the run's notes")
    no.add_argument("--runs", help="runs directory")
    no.set_defaults(fn=cmd_note)

    def _filters(q: argparse.ArgumentParser) -> None:
        q.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
        q.add_argument("--status", action="append", help="only runs with this status (repeatable)")
        q.add_argument("--tag", help="only runs with this tag")
        q.add_argument("--verdict", help="only runs with this verdict")
        q.add_argument("--last", type=int, help="only the last N runs")
        q.add_argument("--baseline", type=int, help="'what changed' compares runs without a parent to this run "
                       "(default: the previous run of the same notebook)")

    led = sub.add_parser("ledger", help="print the results ledger")
    _filters(led)
    led.add_argument("--columns", help="comma-separated columns to show (an unknown name is refused)")
    led.add_argument("--all", action="store_true", help="show every column")
    led.add_argument("--lineage", type=int, metavar="RUN", help="the runs descending from RUN (derived, extended, "
                     "rerun), each with what it changed against its parent and its result")
    led.set_defaults(fn=cmd_ledger)

    ex = sub.add_parser("export", help="write the ledger as Markdown (experiment log), CSV or a standalone HTML report")
    ex.add_argument("path", nargs="?", help="output file; the suffix (.md, .csv, .html) picks the format")
    ex.add_argument("--tensorboard", metavar="DIR", help="write every run (history, params, final metrics) as "
                    "TensorBoard event files, a folder per run (needs tensorboard)")
    ex.add_argument("--mlflow", metavar="URI", help="log every run to this MLflow tracking store, e.g. file:./mlruns "
                    "(needs mlflow-skinny; sqlite: needs mlflow)")
    ex.add_argument("--format", choices=("md", "csv", "html"), help="format when the suffix does not say")
    ex.add_argument("--study", help="write this study's report instead (Markdown: question, answer table, verdict; "
                    "its plots as PNGs beside the file)")
    ex.add_argument("--profile", help="with --study: the profile its runs were made at (default: the CPU scale)")
    _filters(ex)
    ex.set_defaults(fn=cmd_export)

    sd = sub.add_parser("study", help="run a study (a question of our users' logs, notebooks/sweeps/) and print its "
                        "answer; without a name, list the studies")
    sd.add_argument("name", nargs="?", help="the study, e.g. l1_vs_mse")
    sd.add_argument("--dry-run", action="store_true", help="list the planned runs (and those reused) only")
    sd.add_argument("--workers", type=int, help="runs at a time on this machine (default: the spec's, else 2)")
    sd.add_argument("--profile", help="another scale of the study, e.g. full (DIV2K-style data, paper steps)")
    sd.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    sd.add_argument("--fresh", action="store_true", help="run every combination again (default: reuse the "
                    "study's finished runs with the same params)")
    sd.add_argument("--timeout", type=seconds, help="per-run timeout in seconds (default: the spec's)")
    sd.add_argument("--no-progress", action="store_true", help="no progress bar")
    sd.set_defaults(fn=cmd_study)

    b = sub.add_parser("bench", help="the performance goals P1-P6 measured side by side in one process: one table, "
                       "bench.json")
    b.add_argument("what", nargs="?", help="comma-separated sections: P1 (Learner vs hand loop steps/s, fp32 and "
                   "bf16), P2 (step GFLOP/s vs conv peak), P3 (data wait vs step), P4 (demo PSNR-Y per minute, PNG), "
                   "P5 (tiled vs untiled 3840x2160 inference), P6 (ledger load at 10,000 runs, papermill overhead); "
                   "extras: models, bicubic, data; default: P1-P6")
    b.add_argument("--quick", action="store_true", help="every section shrunk: under 2 minutes on 2 quiet cores")
    b.add_argument("--json", default="bench.json", help="where the full results go (default: ./bench.json)")
    b.add_argument("--png", help="P4's curve (default: beside the JSON, <name>_p4.png)")
    b.add_argument("--force", action="store_true", help="measure even while other runs are active (recorded)")
    b.add_argument("--threads", type=int, default=0, help="torch threads to measure with (default: torch's)")
    b.add_argument("--runs", help="keep P4's training run in this runs folder (default: a temporary one)")
    b.add_argument("--models", help="models: comma-separated models to profile (default: a zoo cross-section)")
    b.add_argument("--data-images", type=int, default=800, help="data: synthetic 2K images on disk (data/bench/; "
                   "800 = DIV2K's size, about 3 GB of PNGs and 6.6 GB decoded)")
    b.set_defaults(fn=cmd_bench)


    d = sub.add_parser("data", help="prepare training data: sub-images (crops of large images), or a decoded cache")
    d.add_argument("action", choices=("prepare", "cache", "frames"), help="prepare: overlapping crops written as PNGs "
                   "(resumable); cache: decode every image once into data/cache/ ($LAB_CACHE_DIR) for -p disk_cache "
                   "true; frames: a video's frames as PNGs (a training folder from an episode)")
    d.add_argument("folder", nargs="?", help="the folder of source images (frames: the video)")
    d.add_argument("out", nargs="?", help="prepare: the folder the crops go to")
    d.add_argument("--crop", type=int, default=480, help="prepare: crop side in px (DIV2K practice: 480)")
    d.add_argument("--step", type=int, default=240, help="prepare: stride between crops in px")
    d.add_argument("--thresh", type=int, default=0, help="prepare: add a crop flush with the border when more "
                   "than this is left over")
    d.add_argument("--clear", action="store_true", help="cache: remove every cached image")
    d.add_argument("--every", type=int, default=1, help="frames: keep every N-th frame")
    d.add_argument("--dedup", action="store_true", help="frames: drop near-duplicates (a drawing held 2-3 frames)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(fn=cmd_data)

    j = sub.add_parser("jupyter", help="JupyterLab on localhost (with a token) over per-user working copies of the "
                       "notebooks in work/ (git-ignored): the committed notebooks stay templates")
    j.add_argument("--dir", help="the working-copy folder (default: work/ in the repository)")
    j.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="any further options and paths, passed to "
                   "jupyter lab in order (e.g. --port 8890 --allow-root); as root --allow-root is added")
    j.set_defaults(fn=cmd_jupyter)

    m = sub.add_parser("models", help="list registered models")
    m.add_argument("pattern", nargs="?", default="")
    m.set_defaults(fn=cmd_models)
    cli_media.add_commands(sub)
    return p


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return v


def message(e: BaseException) -> str:
    """An exception as one line a person reads: the message, not its repr (a KeyError's quotes) nor its type."""
    text = e.args[0] if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str) else str(e)
    return " ".join(text.split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lab` console script. Exit codes: 0 done; 1 a run or the program failed (an internal
    error: the message says so, LAB_DEBUG=1 shows the traceback); 2 bad input or usage (one line on stderr, never a
    traceback); 130 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, theirs = split_jupyter_args(argv[1:]) if argv[:1] == ["jupyter"] else (argv[1:], [])  # Jupyter's, in order
    args = build_parser().parse_args(argv[:1] + own)
    args.jupyter_args = theirs or getattr(args, "jupyter_args", [])
    try:
        from lab.kernelspec import ensure_kernel
        from lab.utils import PROJECT_ROOT

        if not (PROJECT_ROOT / "notebooks").is_dir():
            print(f"lab: no notebooks/ beside the lab package in {PROJECT_ROOT} (a `pip install .` copy): the lab runs "
                  "from its clone; there, `pip install -e .` (or `make setup`)", file=sys.stderr)
            return 2
        ensure_kernel()
        return args.fn(args)
    except KeyboardInterrupt:
        print(f"lab {args.cmd}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place a command's error becomes its message
        if os.environ.get(vocab.ENV_DEBUG):
            raise
        if isinstance(e, (KeyError, ValueError, OSError, TypeError)):
            print(f"lab {args.cmd}: {message(e)}", file=sys.stderr)
            return 2
        print(f"lab {args.cmd}: {message(e)} (an internal error, {type(e).__name__}: please report it; LAB_DEBUG=1 "
              "shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
