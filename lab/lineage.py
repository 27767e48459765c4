"""The lineage of runs as the ledger shows it: a run and the runs derived from it, generation by generation, each
with what it changed against its parent and its result (`lab ledger --lineage 67`)."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from lab.ledger import is_missing

RESULT_COLUMNS = ("metric.valid_psnr_y", "metric.set5_psnr_y", "metric.valid_ssim_y", "metric.train_minutes")


def children(df: pd.DataFrame) -> dict[int, list[int]]:
    """Run id -> the ids of the runs whose parent it is, in id order."""
    out: dict[int, list[int]] = {}
    for rid, parent in zip(df["id"], df["parent"] if "parent" in df else [None] * len(df)):
        if not is_missing(parent):
            out.setdefault(int(parent), []).append(int(rid))
    return {k: sorted(v) for k, v in out.items()}


def descendants(df: pd.DataFrame, run_id: int) -> list[tuple[int, int]]:
    """(id, generation) of run `run_id` (generation 0) and every run descending from it, depth first in id order;
    KeyError when the ledger has no such run."""
    ids = {int(i) for i in df["id"]}
    if int(run_id) not in ids:
        have = f"runs: {min(ids)}..{max(ids)}" if ids else "it has no runs"
        raise KeyError(f"run {run_id} is not in the ledger; {have}")
    kids = children(df)
    out: list[tuple[int, int]] = []
    stack = [(int(run_id), 0)]
    while stack:
        rid, depth = stack.pop()
        if any(rid == r for r, _ in out):  # a parent loop (hand-edited meta): show each run once
            continue
        out.append((rid, depth))
        stack.extend((c, depth + 1) for c in reversed(kids.get(rid, [])))
    return out


def lineage_table(df: pd.DataFrame, run_id: int, results: Sequence[str] = RESULT_COLUMNS) -> pd.DataFrame:
    """The runs descending from `run_id` as rows: the run (indented by generation), its parent, status, what it
    changed against its parent, and the result columns the ledger holds."""
    by_id = df.set_index("id")
    cols = [c for c in results if c in df.columns]
    rows: list[dict[str, Any]] = []
    for rid, depth in descendants(df, run_id):
        r = by_id.loc[rid]
        parent = None if is_missing(r.get("parent")) else int(r["parent"])
        changed = r.get("changed")
        rows.append({"run": "  " * depth + ("└ " if depth else "") + f"#{rid} {r.get('title') or r['name']}",
                     "parent": f"#{parent}" if parent is not None else "",
                     "status": r["status"],
                     "changed": "" if depth == 0 or is_missing(changed) else str(changed).split(": ", 1)[-1],
                     **{c.split(".", 1)[-1]: r.get(c) for c in cols}})
    return pd.DataFrame(rows)


def format_lineage(table: pd.DataFrame) -> str:
    """The lineage table as text, columns left-aligned so each generation's indent shows."""
    cells = [[str(c) for c in table.columns]] + [["" if is_missing(v) else f"{v:.3f}" if isinstance(v, float) else
                                                 str(v) for v in row] for row in table.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
