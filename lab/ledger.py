"""The results ledger: every run directory as one row of a pandas DataFrame; broken runs are reported, never fatal.

Besides params and metrics a row carries the effective status (a 'running' run whose process died is shown as
'interrupted'), timing, cost (params, GFLOPs, forward ms when the run recorded a profile), the notes, tags and
verdict people attached (and the tags it was made with, e.g. its study's name: `lab ledger --tag l1_vs_mse`) and
"what changed" against its parent or a baseline. Every file is read through
`lab.runs.Run`; the exports (Markdown experiment log, CSV, HTML) live in `lab.report`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import hashlib
import json
import math
import os
import pickle
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from lab import vocab
from lab.runs import CHECKPOINT_DIR, STALE_AFTER_S, STATUSES, Run, as_run, effective_status, runs_dir, scan
from lab.utils import atomic_write_with, parse_time

BASE_COLUMNS = ("id", "name", "title", "date", "status", "notebook", "git_commit", "git_dirty", "parent")
COST_KEYS = {  # ledger cost column -> keys looked up in the profile, then the metrics; first found wins
    "cost.params": ("params",),
    "cost.gflops": ("gflops",),
    "cost.forward_ms": ("forward_ms", "ms_fp32", "ms_bf16", "ms_fp16"),
    "cost.threads": ("threads",),
}
DATA_KEYS = ("data", "data_lr", "valid", "degradation", "scale", "patch_size")


def _cells(records: list[dict[str, Any]], prefix: str) -> pd.DataFrame:
    """Many runs' params (or metrics) as ledger columns, `prefix` before each key, nested values as JSON text;
    built a column at a time: at 10,000 runs a per-cell Python loop costs as much as reading the files."""
    df = pd.DataFrame(records)
    for c, dtype in df.dtypes.items():
        if not pd.api.types.is_object_dtype(dtype):  # numbers and strings: nothing nested
            continue
        v = df[c].tolist()
        if any(isinstance(x, (list, tuple, dict)) for x in v):
            df[c] = _as_json(v)
    return df.add_prefix(prefix)


def _as_json(values: list[Any]) -> list[Any]:
    """`values` with each list or dict as its JSON text; runs repeat their nested values, so each distinct one is
    dumped once (keyed by its repr, which tells JSON's types and values apart and costs less than dumping)."""
    text: dict[str, str] = {}
    out = []
    for x in values:
        if isinstance(x, (list, tuple, dict)):
            key = repr(x)
            if key not in text:
                text[key] = json.dumps(x)
            x = text[key]
        out.append(x)
    return out


def summarize_notes(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Notes text (joined with ' | '), current tags (sorted, comma-separated) and the latest verdict."""
    texts, tags, verdict = [], [], None
    for r in records:
        if r.get("text"):
            texts.append(str(r["text"]))
        for t in r.get("tags") or []:
            if t not in tags:
                tags.append(t)
        for t in r.get("untag") or []:
            if t in tags:
                tags.remove(t)
        if "verdict" in r:
            verdict = r["verdict"] or None
    return {"notes": " | ".join(texts) or None, "tags": ", ".join(sorted(tags)) or None, "verdict": verdict}


def has_tag(df: pd.DataFrame, tag: str) -> pd.Series:
    """Boolean mask of the runs carrying `tag`."""
    if "tags" not in df:
        return pd.Series(False, index=df.index)
    return df["tags"].fillna("").map(lambda s: tag in [t.strip() for t in s.split(",")])


# ---------------------------------------------------------------------------------------------------------------
# loading


def _cost(profile: dict[str, Any] | None, metrics: dict[str, Any]) -> dict[str, Any]:
    """The cost columns: each from the first source (profile, then the metrics) holding one of its keys as a number."""
    sources = [s for s in (profile, metrics.get("profile"), metrics.get("cost"), metrics) if isinstance(s, dict)]
    out: dict[str, Any] = {}
    for col, keys in COST_KEYS.items():
        found = [v for s in sources for k in keys if type(v := s.get(k)) in (int, float)]  # JSON's numbers, not bool
        if found:
            out[col] = found[0]
    return out


def _row(run: Run, now: float, stale_after: float, summary: bool = True,
         stamp: tuple[int, int, int] | None = None) -> tuple[dict[str, Any], dict, dict]:
    """One run as a flat row (less its params and metrics, which `_cells` makes columns of), its params and its
    metrics (`stamp`: the run's, just taken); ValueError when corrupt or half-written."""
    rec = run.record(summary=summary, stamp=stamp)
    meta, params, status, metrics = rec.meta, rec.params, rec.status, rec.metrics
    git = meta.get("git") or {}
    err = status.get("error") or {}
    started, finished = parse_time(status.get("started")), parse_time(status.get("finished"))
    beat = parse_time(status.get("heartbeat"))
    eff = effective_status(status, now, stale_after, rec.pulse)
    if eff == "done" and any(v != v for k, v in metrics.items() if type(v) is float and "psnr" in k):  # NaN
        eff = "diverged"
    end = finished if finished is not None else (beat if eff != "running" else now)
    sweep = meta.get("sweep")
    row: dict[str, Any] = {
        "id": run.id, "name": run.name, "title": meta.get("title"), "date": meta.get("created"),
        "status": eff, "notebook": meta.get("notebook"), "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"), "parent": meta.get("parent"),
        "code": (meta.get("code") or {}).get("entry") if isinstance(meta.get("code"), dict) else None,
        "sweep": sweep.get("name") if isinstance(sweep, dict) else sweep,
        "started": status.get("started"), "finished": status.get("finished"),
        "duration_s": (end - started) if (started is not None and end is not None) else None,
        "heartbeat_age_s": (now - beat) if beat is not None else None, "_heartbeat": beat,
        "recorded_status": status.get("status"), "pid": status.get("pid"), "host": status.get("host"),
        "epoch": status.get("epoch"),
        "error": err.get("message") if isinstance(err, dict) else str(err),
        "error_cell": err.get("cell") if isinstance(err, dict) else None, "path": run._d,
        "_data_changed": bool(meta.get("data_changed")),  # a rerun whose training files differed (lab.sweep)
    }
    if rec.init_from and rec.init_from.get("checkpoint"):  # which weights a fine-tuned run started from
        ck = Path(rec.init_from["checkpoint"])
        row["init_weights"] = f"{ck.parent.parent.name}/{ck.name}" if ck.parent.name == CHECKPOINT_DIR else str(ck)
    born = meta.get("tags") if isinstance(meta.get("tags"), list) else []  # tags a run was made with (a study's)
    row.update(summarize_notes([{"tags": born}, *rec.notes]))
    if params.get("notes") and isinstance(params["notes"], str):
        row["notes"] = params["notes"] + (f" | {row['notes']}" if row["notes"] else "")
    row.update(_cost(rec.profile, metrics))
    if rec.profile and rec.profile.get("busy"):  # timed while other runs shared the cores
        row["cost.busy"] = True
    row["budget"] = _budget(params)
    return row, params, metrics


def _budget(params: dict[str, Any]) -> str | None:
    """The training budget a run used, as the notebook reads its parameters: minutes, else steps, else epochs."""
    if params.get("time_budget"):
        return f"{params['time_budget']:g} min"
    for key in ("steps", "epochs"):
        if params.get(key):
            n = params[key]
            return f"{n} {key if str(n) != '1' else key[:-1]}"
    return None


def _short(v: Any, n: int = 24) -> str:
    t = type(v)
    s = v if t is str else repr(v) if t is int or (t is float and math.isfinite(v)) else json.dumps(v, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"


def describe_change(params: dict[str, Any], ref: dict[str, Any], ref_id: int | None = None,
                    max_len: int = 120, ignore: Sequence[str] = ("name", "notes", "run_dir")) -> str:
    """A short "what changed" text: the params of a run that differ from a reference run's, e.g. `vs #41: lr 0.001→0.0005`."""
    diffs = []
    if list(params) == list(ref):  # the same keys in the same order (the common case): compare side by side
        differ = [k for (k, b), a in zip(params.items(), ref.values()) if a != b]
    else:
        differ = [k for k, b in params.items() if ref.get(k, "∅") != b] + [k for k in ref if k not in params]
    for k in differ:
        if k in ignore:
            continue
        a, b = ref.get(k, "∅"), params.get(k, "∅")
        if isinstance(a, dict) and isinstance(b, dict):  # model_kwargs.num_feat 8→16, not two dicts
            diffs += [f"{k}.{kk} {_short(a.get(kk, '∅'))}→{_short(b.get(kk, '∅'))}" for kk in [*b, *(x for x in a
                      if x not in b)] if a.get(kk, "∅") != b.get(kk, "∅")]
        else:
            diffs.append(f"{k} {_short(a)}→{_short(b)}")
    head = f"vs #{ref_id}: " if ref_id is not None else ""
    if not diffs:
        return f"{head}same params" if ref_id is not None else "same params"
    text = head
    for i, d in enumerate(diffs):
        more = f" (+{len(diffs) - i} more)"
        piece = d if i == 0 else f", {d}"
        if len(text) + len(piece) + len(more) > max_len and i > 0:
            return text + more
        text += piece
    return text


def _refs(rows: list[dict[str, Any]], known: set, baseline: int | None) -> list[int | None]:
    """Each row's reference run for `changed`: its parent, else `baseline`, else the previous run of its notebook."""
    prev_by_nb: dict[Any, int] = {}
    out = []
    for r in rows:
        rid, nb, parent = r["id"], r.get("notebook"), r.get("parent")
        if parent in known and parent != rid:
            out.append(parent)
        elif baseline in known and baseline != rid:
            out.append(baseline)
        else:
            out.append(prev_by_nb.get(nb))
        prev_by_nb[nb] = rid
    return out


def _change_text(rid: int, ref: int | None, nb_of: dict, params: Any, data_changed: bool = False) -> str | None:
    if ref is None:
        return None
    if nb_of.get(ref) not in (None, nb_of.get(rid)):
        return f"from #{ref} ({nb_of[ref]})"
    text = describe_change(params[rid], params[ref], ref)
    return f"{text}; training files changed" if data_changed else text


def _changes(rows: list[dict[str, Any]], params: dict[int, dict], baseline: int | None) -> None:
    """Fill `changed` in place: vs the parent, else `baseline`, else the previous run of the same notebook."""
    nb_of = {r["id"]: r.get("notebook") for r in rows}
    for r, ref in zip(rows, _refs(rows, set(params), baseline)):
        r["changed"] = _change_text(r["id"], ref, nb_of, params, bool(r.get("data_changed")))


CACHE_VERSION = 3  # 3: rows carry `_data_changed`; 2: each run's params pickled (1: JSON text)
RACY_S = 2.0  # a run changed this close to a cache's making is read again next time (timestamps are coarse)


def cache_file(root: str | os.PathLike, cache: bool | str | os.PathLike = True) -> Path | None:
    """Where the ledger of `root` is cached on this machine: `cache` (a folder), else `$LAB_LEDGER_CACHE`, else
    `~/.cache/lab/ledger` (per user: the cache is a pickle, never read from a shared folder); None when off."""
    env = os.environ.get(vocab.ENV_LEDGER_CACHE, "")
    if cache is False or env == "off":
        return None
    base = Path(cache) if cache is not True else Path(env) if env else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lab" / "ledger"
    return base / f"{hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]}.pkl"


def _read_cache(path: Path, root: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            got = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError):
        return {}
    ok = isinstance(got, dict) and got.get("version") == CACHE_VERSION and got.get("root") == str(root)
    return got if ok else {}


def _write_cache(path: Path, obj: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_with(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL),
                          sync=False)  # a torn one is rebuilt
    except OSError as e:  # a read-only home: the ledger still loads, uncached
        warnings.warn(f"ledger: cannot write the cache {path}: {e}", stacklevel=4)


@contextlib.contextmanager
def _gc_paused() -> Any:
    """The cyclic garbage collector off meanwhile: reading 10,000 runs makes millions of objects and no cycles, and
    the collections they trigger cost a tenth of the load."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load(root: str | os.PathLike | None = None, *, baseline: int | None = None,
         stale_after: float = STALE_AFTER_S, warn: bool = True, cache: bool | str | os.PathLike = True,
         summaries: bool = True) -> pd.DataFrame:
    """All runs under `root` (default `runs/`) as a DataFrame, one row per run, sorted by id.

    Corrupt or half-written run directories are skipped with a warning and listed in `df.attrs['problems']`.
    `changed` describes each run's params against its parent, else run `baseline`, else the previous run of the
    same notebook. A run is read from its summary (`lab.runs`) while that matches its files (`summaries`; else from the
    files themselves), and a finished run's row is cached on this machine (`cache_file`; `cache=False`: none)
    under its directory's stamp (`lab.runs.Run.stamp`): a run added, annotated, resumed, deleted or changed by
    another process is read again, a running one always is.
    """
    root = runs_dir(root)
    with _gc_paused():
        df = _load(root, baseline, stale_after, cache, summaries)
    if warn:
        for pr in df.attrs["problems"]:
            warnings.warn(f"ledger: skipped {pr['run']}: {pr['problem']}", stacklevel=2)
    return df


def _load(root: Path, baseline: int | None, stale_after: float, cache: bool | str | os.PathLike,
          summaries: bool) -> pd.DataFrame:
    """`load`'s work, problems in `df.attrs` (`load` warns of them)."""
    t_made = time.time()
    now = _dt.datetime.now().timestamp()
    cpath = cache_file(root, cache)
    old = _read_cache(cpath, root) if cpath is not None else {}
    old_stamps, old_df, old_params = old.get("stamps", {}), old.get("df"), old.get("params", {})
    reuse, fresh, stamps, problems = [], [], {}, []
    for run in scan(root):
        try:
            st = run.stamp()
        except OSError:  # deleted while listed
            continue
        if old_stamps.get(run.name) == st:
            reuse.append(run.name)
            stamps[run.name] = st
        else:
            fresh.append((run, st))
    rows, params, row_params, row_metrics = [], {}, [], []  # params by id (for `changed`); per row (for cells)
    for run, st in fresh:
        try:
            row, p, m = _row(run, now, stale_after, summaries, st)
        except ValueError as e:
            problems.append({"run": run.name, "problem": str(e)})
            continue
        except OSError as e:
            problems.append({"run": run.name, "problem": f"unreadable: {e}"})
            continue
        rows.append(row)
        params[run.id] = p
        row_params.append(p)
        row_metrics.append(m)
        if row["recorded_status"] != "running" and max(st[1], st[2]) / 1e9 < t_made - RACY_S:
            stamps[run.name] = st
    df = _frame(rows, row_params, row_metrics, old_df, reuse)
    if len(df):
        kept_params = {i: old_params[i] for i in map(int, df["id"].tolist()) if i not in params and i in old_params}
        _fill_changes(df, params, kept_params, baseline)
        if cpath is not None and (fresh or len(old_stamps) != len(reuse)):
            packed = {rid: pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL) for rid, p in params.items()}
            _write_cache(cpath, {"version": CACHE_VERSION, "root": str(root), "stamps": stamps, "df": df,
                                 "params": {**kept_params, **packed}})  # each run's params unpickled when needed
        df = df.assign(heartbeat_age_s=now - df["_heartbeat"]).drop(columns=["_heartbeat", "_ref"])
        df = df.rename(columns={"_data_changed": "data_changed"})
        df = df.reset_index(drop=True)
    df.attrs["problems"] = problems
    df.attrs["root"] = str(root)
    return df


def _frame(rows: list[dict[str, Any]], params: list[dict[str, Any]], metrics: list[dict[str, Any]],
           old_df: pd.DataFrame | None, reuse: list[str]) -> pd.DataFrame:
    """The cached rows still valid and the rows read now (with their params and metrics), in one frame indexed by
    run name, sorted by id."""
    if not rows and not reuse:
        return pd.DataFrame(columns=[*BASE_COLUMNS, "changed", "notes", "tags", "verdict"])
    new = pd.concat([pd.DataFrame(rows), _cells(params, "param."), _cells(metrics, "metric.")], axis=1)
    if rows:
        new.index = [r["name"] for r in rows]
        new["date"] = pd.to_datetime(new["date"], utc=True, errors="coerce", format="ISO8601")
    if reuse and old_df is not None:
        kept = old_df.loc[reuse]
        new = pd.concat([kept, new]).infer_objects() if rows else kept.copy()  # dtypes as one frame infers
    ids, names = new["id"].tolist(), list(new.index)
    order = sorted(range(len(new)), key=lambda k: (ids[k], names[k]))
    return new if order == list(range(len(new))) else new.iloc[order]  # runs are listed in order: no copy then


def _fill_changes(df: pd.DataFrame, params: dict[int, dict], cached: dict[int, bytes], baseline: int | None) -> None:
    """`changed` (and its reference, `_ref`) in place from the params read now and the `cached` params (pickled,
    unpickled when needed); a cached row keeps its text while neither it nor its reference was read again and the
    reference is the same."""
    ids = df["id"].tolist()
    rows = [{"id": i, "notebook": None if is_missing(n) else n, "parent": None if is_missing(p) else int(p)}
            for i, n, p in zip(ids, df["notebook"].tolist(), df["parent"].tolist())]
    refs = _refs(rows, set(ids), baseline)
    old_refs = df["_ref"].tolist() if "_ref" in df else [None] * len(ids)
    old_text = df["changed"].tolist() if "changed" in df else [None] * len(ids)

    class _Params(dict):
        def __missing__(self, rid: int) -> dict:
            got = pickle.loads(cached[rid])
            self[rid] = got
            return got

    every = _Params(params)
    moved = set(df.loc[df["_data_changed"].eq(True), "id"].tolist())
    nb_of = {r["id"]: r["notebook"] for r in rows}
    text = []
    for rid, ref, o_ref, o_text in zip(ids, refs, old_refs, old_text):
        kept = rid not in params and ref not in params and (ref == o_ref or (ref is None and is_missing(o_ref)))
        text.append(o_text if kept else _change_text(rid, ref, nb_of, every, rid in moved))
    df["changed"] = text
    df["_ref"] = pd.array(refs, dtype="Int64")


def what_changed(df: pd.DataFrame, baseline: int | None = None) -> pd.Series:
    """`changed` recomputed from the `param.*` columns: vs parent, else run `baseline`, else the previous run (and
    "; training files changed" where `data_changed` says a rerun's files differed)."""
    pcols = [c for c in df.columns if c.startswith("param.")]
    params = {int(r["id"]): {c[6:]: r[c] for c in pcols if not is_missing(r[c])} for _, r in df.iterrows()}
    rows = [{"id": int(r["id"]), "notebook": r.get("notebook"),
             "parent": None if is_missing(r.get("parent")) else int(r["parent"]),
             "data_changed": not is_missing(r.get("data_changed")) and bool(r.get("data_changed"))}
            for _, r in df.iterrows()]
    _changes(rows, params, baseline)
    return pd.Series([r["changed"] for r in rows], index=df.index, name="changed")


def is_missing(v: Any) -> bool:
    """True for None, NaN and pandas' NA (a cell a run did not record)."""
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def filter_runs(df: pd.DataFrame, *, status: str | Sequence[str] | None = None, tag: str | None = None,
                verdict: str | None = None, notebook: str | None = None, sweep: str | None = None,
                last: int | None = None) -> pd.DataFrame:
    """The rows matching every given filter (status may be several); `last` keeps the newest N."""
    out = df
    if status:
        wanted = [status] if isinstance(status, str) else list(status)
        bad = [s for s in wanted if s not in STATUSES]
        if bad:
            raise ValueError(f"unknown status {bad}; accepted: {STATUSES}")
        out = out[out["status"].isin(wanted)]
    if tag:
        out = out[has_tag(out, tag)]
    if verdict:
        out = out[out.get("verdict", pd.Series(index=out.index, dtype=object)) == verdict]
    if notebook:
        out = out[out["notebook"].fillna("").str.replace(".ipynb", "", regex=False) == notebook.replace(".ipynb", "")]
    if sweep:
        out = out[out.get("sweep", pd.Series(index=out.index, dtype=object)) == sweep]
    if last:
        out = out.tail(last)
    return out


DEFAULT_VIEW = ("id", "name", "status", "error", "param.model", "param.scale", "budget", "metric.valid_psnr_y",
                "metric.set5_psnr_y", "metric.set5_gain_psnr_y", "metric.set5_ssim_y", "metric.train_minutes",
                "cost.gflops", "cost.forward_ms", "cost.busy", "changed", "tags", "verdict")


def _short_name(column: str) -> str:
    return column.split(".", 1)[-1] if not column.startswith("cost.") else column


def view(df: pd.DataFrame, columns: tuple[str, ...] | list[str] = DEFAULT_VIEW, strict: bool = False) -> pd.DataFrame:
    """The ledger columns people read first (those present), with short names; a failed run's error shortened to a
    line. `strict` (columns a person typed, full or short names): an unknown name is a ValueError naming the known
    ones, never dropped silently."""
    short = {}
    for c in df.columns:
        short.setdefault(_short_name(c), c)
    if strict:
        unknown = [c for c in columns if c not in df.columns and c not in short]
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(map(repr, unknown))}; known: "
                             f"{', '.join(sorted(set(short) | set(df.columns)))}")
    cols = [c if c in df.columns else short[c] for c in columns if c in df.columns or (strict and c in short)]
    out = df[cols].rename(columns=_short_name)
    if "error" in out.columns:
        out["error"] = out["error"].map(lambda v: "" if not isinstance(v, str) else v if len(v) <= 60 else v[:59] + "…")
    return out


def history(run: int | str | os.PathLike | Run, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """A run's per-epoch history as a DataFrame (empty when none was recorded)."""
    return pd.DataFrame(as_run(run, root).history)
