"""A hand-kept experiment log read into a lineage spec (`lab log import NOTES.md`), for logs in the form of our
users' diff logs (000): `## 23` headers (also `## 29~34`, `## 35,36,33`, `## 33.2`), `key: value` lines, `A => B`
changes, `(unchanged)`, `(same as ##67)`, `steps: 255000|511000` (carried on), `steps: 390000/1023000` (stopped
early), a list of values on a multi-run header, and free-text section titles between `---` rules.

Every line becomes a param of its entry, a link between entries, a note (verdicts and measurements such as
`forward: 63.7ms`), or an unmapped line the user resolves (kept as a comment in the spec); `summary` counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

HEADER = re.compile(r"^##\s*(?P<ids>[\w.~]+(?:\s*,\s*[\w.~]+)*)\s*$")
KEY_VALUE = re.compile(r"^(?P<key>[A-Za-z][\w .\-]*?)\s*:\s*(?P<value>.+)$")
SAME_AS = re.compile(r"\(?\s*same as\s*##\s*(?P<id>[\w.~]+)\s*\)?", re.I)
PAREN = re.compile(r"^\((?P<text>[^()]*)\)$")
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
MODELS = {"generatorsrn": "srn", "srn": "srn", "generatorresunet": "resunet", "generatorresnet": "resnet_generator",
          "vdsr": "vdsr"}  # log 000's model names -> the lab's registered ones
NORMS = {"instance": "instance", "batch": "batch", "none": "none"}
ACTS = {"relu": "relu", "swish": "swish", "silu": "swish", "leakyrelu": "lrelu", "prelu": "prelu"}
LOSS_TERMS = {"l1": "l1", "l2": "mse", "mse": "mse", "ms-ssim": "msssim", "ssim": "ssim"}
NOTE_KEYS = ("forward",)  # measurements: kept as the entry's note, not params
STEP_PARAMS = ("steps", "schedule_kwargs.decay_steps", "schedule_kwargs.first_decay_steps",
               "schedule_kwargs.warmup_steps", "extend")  # divided by a spec's CPU scale factor


@dataclass
class Entry:
    """One `## ...` entry of a log as read: its ids, the lines under it, and what they became."""

    ids: list[str]
    lines: list[str] = field(default_factory=list)
    section: str | None = None  # the free-text title above it (a new family of runs), if any
    params: dict[str, Any] = field(default_factory=dict)
    vary: dict[str, list[Any]] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # `same as ##67`
    extend: int | None = None  # `steps: a|b`: carried on to b
    notes: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # counts: param, link, note, unmapped


def split_entries(text: str) -> list[Entry]:
    """The `## ...` entries of a log in order, each with its lines; a line of free text after a `---` rule is the
    section title of the entries that follow."""
    out: list[Entry] = []
    pending: str | None = None
    after_rule = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("# "):
            continue
        if set(line) == {"-"}:
            after_rule = True
            continue
        m = HEADER.match(line)
        if m:
            out.append(Entry([i.strip() for i in m["ids"].split(",")], section=pending))
            pending, after_rule = None, False
            continue
        if after_rule and pending is None and ":" not in line:
            pending = line
            continue
        if out:
            out[-1].lines.append(line)
    return out


def _num(text: str) -> int | float | None:
    m = re.fullmatch(NUMBER, text.strip())
    if not m:
        return None
    v = float(m.group(0))
    return int(v) if v.is_integer() and "e" not in text.lower() and "." not in text else v


def _after_arrow(value: str) -> str:
    return value.split("=>")[-1].strip()


def _loss(value: str) -> str | None:
    terms = []
    for t in value.split("+"):
        name = t.strip().lower()
        if name not in LOSS_TERMS:  # e.g. `MS-SSIM2`, a variant the lab has no name for
            return None
        terms.append(LOSS_TERMS[name])
    return " + ".join(terms)


def _map_value(key: str, value: str, e: Entry) -> dict[str, Any] | None:
    """The params one `key: value` line sets, or None when the lab has no such knob (or the value is not read)."""
    k = re.sub(r"[\s\-_]+", " ", key.strip().lower())
    v = _after_arrow(value)
    if k == "steps":
        m = re.fullmatch(r"(\d+)\s*(?:\|\s*(\d+))?\s*(?:\((\d+)\))?", v)
        stop = re.fullmatch(r"(\d+)\s*/\s*(\d+)", v)
        if stop:
            e.notes.append(f"stopped at step {stop[1]} of {stop[2]}")
            return {"steps": int(stop[2])}
        if not m:
            return None
        if m[2]:
            e.extend = int(m[2])
        if m[3]:
            e.notes.append(f"stopped at step {m[3]}")
        return {"steps": int(m[1])}
    if k in ("lr", "wd", "batch size", "grad clip", "mixup") and _num(v) is not None:
        name = {"batch size": "batch_size", "grad clip": "clip"}.get(k, k)
        n = _num(v)
        return {name: n} if n is not None else None
    if k in ("generator norm", "norm"):
        n = NORMS.get(v.lower())
        return {"model_kwargs.norm": n} if n else None
    if k == "activation":
        a = ACTS.get(v.lower().replace(" ", ""))
        return {"model_kwargs.act": a} if a else None
    if k in ("seunit", "se"):
        return {"model_kwargs.se": v.lower() in ("on", "true", "yes")} if v.lower() in (
            "on", "off", "true", "false", "yes", "no") else None
    if k == "model":
        m = MODELS.get(v.lower())
        return {"model": m} if m else None
    if k == "loss":
        lo = _loss(v)
        return {"loss": lo} if lo else None
    if k == "channels":
        try:
            ch = yaml.safe_load(v)
        except yaml.YAMLError:
            return None
        return {"model_kwargs.channels": ch} if isinstance(ch, list) and all(isinstance(c, int) for c in ch) else None
    if k == "resblocks":
        nums = [_num(x) for x in v.split(",")]
        return {"model_kwargs.num_block": nums} if all(isinstance(n, int) for n in nums) else None
    if k == "downsample":
        return {"model_kwargs.down": "space_to_depth"} if v.lower() == "spacetodepth" else \
            {"model_kwargs.down": "strided"} if "strided" in v.lower() else None
    if k in ("exponential decay", "exp decay"):
        m = re.fullmatch(rf"({NUMBER})\s*(?:\^\s*\(\s*step\s*/\s*(\d+)\s*\))?", v)
        if not m:
            return None
        out: dict[str, Any] = {"schedule": "warmup_restarts_decay", "schedule_kwargs.decay_rate": float(m[1])}
        if m[2]:
            out["schedule_kwargs.decay_steps"] = int(m[2])
        return out
    if k in ("cosine restart", "cosine restarts"):
        kw = dict(re.findall(rf"(\w+)\s*=\s*({NUMBER})", v))
        if not kw or any(x not in ("t_mul", "m_mul", "alpha") for x in kw):
            return None
        return {"schedule": "warmup_restarts_decay", "schedule_kwargs.warmup_pct": 0.0,
                **{f"schedule_kwargs.{x}": float(y) for x, y in kw.items()}}
    if k in ("tanh", "skip") and v.lower() in ("on", "off"):
        return {f"model_kwargs.{k}": v.lower() == "on"}
    if k == "mixup" and v.lower() == "off":
        return {"mixup": 0.0}
    if k == "random seed" and v.isdigit():
        return {"seed": int(v)}
    if k == "linear light":
        return {"linear_light": v.lower() in ("on", "true", "yes")}
    return None


def _free_line(line: str, e: Entry) -> dict[str, Any] | str | None:
    """A line without `key: value`: params it sets, 'link'/'note' for what it is, or None (unmapped)."""
    low = line.lower()
    m = re.fullmatch(r"cosine restarts?\s*\(\s*warmup[ _]cycles?\s*=\s*(\d+)\s*\)", low)
    if m:
        return {"schedule": "warmup_restarts_decay", "schedule_kwargs.warmup_cycles": int(m[1])}
    if re.fullmatch(r"remove seunit( in resblocks?)?", low):
        return {"model_kwargs.se": False}
    if re.fullmatch(r"replace l2 regularizer \+ adam with adamw", low):
        return {"opt": "adamw"}
    p = PAREN.match(line)
    if p:
        text = p["text"].strip()
        chose = re.fullmatch(r"chose\s+(.+)", text)
        if chose:
            e.notes.append(f"chose {chose[1]}")
            return "link"
        if text.lower().startswith("unchanged"):
            rest = text[len("unchanged"):].strip(" ,")
            if rest:
                e.notes.append(rest)
            return "link"
        e.notes.append(text)
        return "note"
    return None


def read_entry(e: Entry) -> Entry:
    """Map an entry's lines (in place): params, vary lists on a multi-run header, links, notes, unmapped lines."""
    for line in e.lines:
        kind = "param"
        same = SAME_AS.search(line)
        body = line
        if same:
            e.source = same["id"]
            body = (line[:same.start()] + line[same.end():]).strip()
            if not body:
                e.kinds["link"] = e.kinds.get("link", 0) + 1
                continue
        kv = KEY_VALUE.match(body)
        if kv and kv["key"].strip().lower() in NOTE_KEYS:
            e.notes.append(body)
            kind = "note"
        elif kv and (len(e.ids) > 1 or "~" in e.ids[0]) and "," in kv["value"] and "=>" not in kv["value"] and \
                kv["key"].strip().lower() not in ("resblocks", "channels"):
            values = [x.strip() for x in kv["value"].split(",")]
            mapped = [_map_value(kv["key"], x, e) for x in values]
            if all(m and len(m) == 1 for m in mapped) and len({next(iter(m)) for m in mapped}) == 1:
                name = next(iter(mapped[0]))
                e.vary[name] = [m[name] for m in mapped]
            else:
                kind = "unmapped"
        elif kv:
            got = _map_value(kv["key"], kv["value"], e)
            if got is None:
                kind = "unmapped"
            else:
                e.params.update(got)
        else:
            got = _free_line(body, e)
            if isinstance(got, dict):
                e.params.update(got)
            elif got in ("link", "note"):
                kind = got
            else:
                kind = "unmapped"
        if kind == "unmapped":
            e.unmapped.append(line)
        e.kinds[kind] = e.kinds.get(kind, 0) + 1
    for note in e.notes:  # "(chose 5e-5)" picks the varied run later entries continue
        m = re.fullmatch(r"chose (.+)", note)
        if m and len(e.vary) == 1:
            name, vals = next(iter(e.vary.items()))
            n = _num(m[1])
            if n in vals:
                e.chosen = {name: n}
    return e


def _in(ids: list[str], ranges: list[tuple[float, float]] | None) -> bool:
    if not ranges:
        return True
    nums = [float(x) for i in ids for x in re.findall(r"\d+(?:\.\d+)?", i)[:1]]
    return any(lo <= n <= hi for n in nums for lo, hi in ranges)


def import_log(text: str, *, log: str = "log", ranges: list[tuple[float, float]] | None = None,
               base: dict[str, Any] | None = None, section_base: dict[str, dict[str, Any]] | None = None,
               notebook: str = "train", factor: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """A lineage spec from a log's text, and the summary: lines mapped to params, to links between entries, to
    notes, and the unmapped ones with their kinds (the key before ':' or 'free text'). `ranges` keeps the entries
    whose first number is in one of the (low, high) ranges; an entry whose `same as ##N` source was left out, or
    the first of a section, starts from the base (`section_base[title]` on top); `factor` is the CPU scale."""
    entries = [read_entry(e) for e in split_entries(text) if _in(e.ids, ranges)]
    out: list[dict[str, Any]] = []
    kept: dict[str, str] = {}  # log id -> spec entry id
    prev: str | None = None
    section_params: dict[str, Any] = {}
    for e in entries:
        eid = ",".join(e.ids) if len(e.ids) > 1 else e.ids[0]
        while eid in kept.values():
            eid += "'"
        d: dict[str, Any] = {"id": eid}
        if e.section is not None:
            family = MODELS.get(e.section.split()[0].lower())
            section_params = {**({"model": family, "model_kwargs": {}} if family else {}),
                              **(section_base or {}).get(e.section, {})}
            d["from"] = None
        elif e.source is not None:
            d["from"] = kept.get(e.source)
        elif prev is None:
            d["from"] = None
        params = {**(section_params if e.section is not None else {}), **e.params}
        if params:
            d["params"] = params
        if e.vary:
            d["vary"] = e.vary
        if e.chosen:
            d["chosen"] = e.chosen
        d["note"] = f"{log} ##{eid}" + (f": {'; '.join(e.notes)}" if e.notes else "") + \
            (f" (section: {e.section})" if e.section else "")
        d["_unmapped"] = e.unmapped
        out.append(d)
        for i in e.ids:
            kept.setdefault(i, eid)
        prev = eid
        if e.extend:
            out.append({"id": f"{eid}|{e.extend}", "from": eid, "extend": e.extend,
                        "note": f"{log} ##{eid}: carried on to {e.extend} steps", "_unmapped": []})
    _fix_links(out)
    counts: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for e in entries:
        for k, n in e.kinds.items():
            counts[k] = counts.get(k, 0) + n
        for line in e.unmapped:
            kv = KEY_VALUE.match(line)
            kind = kv["key"].strip() if kv else "free text"
            kinds[kind] = kinds.get(kind, 0) + 1
    summary = {"entries": len(entries), "lines": sum(len(e.lines) for e in entries), "params": counts.get("param", 0),
               "links": counts.get("link", 0), "notes": counts.get("note", 0),
               "unmapped": counts.get("unmapped", 0), "unmapped_kinds": kinds}
    spec = {"notebook": notebook, "sweep": log, "scale": {"divide_steps_by": factor, "params": list(STEP_PARAMS)},
            "base": dict(base or {}), "entries": out}
    return spec, summary


def _fix_links(out: list[dict[str, Any]]) -> None:
    """An entry after a varied one with no choice continues the last entry that is not such a vary (the log's
    next line continues its reference run); a `same as` to an entry left out starts from the base."""
    ok: str | None = None
    for d in out:
        if "from" not in d and ok is not None and out.index(d) > 0 and out[out.index(d) - 1]["id"] != ok:
            d["from"] = ok
        if not d.get("vary") or d.get("chosen"):
            ok = d["id"]


def summary_line(summary: dict[str, Any]) -> str:
    """The importer's summary in one line: lines mapped (params, links, notes) and not, with the kinds not mapped."""
    kinds = ", ".join(f"{k} x{n}" for k, n in sorted(summary["unmapped_kinds"].items(), key=lambda x: -x[1]))
    mapped = summary["params"] + summary["links"] + summary["notes"]
    return (f"{summary['entries']} entries, {summary['lines']} lines: {mapped} mapped ({summary['params']} to params, "
            f"{summary['links']} to links between entries, {summary['notes']} to notes), {summary['unmapped']} not "
            f"mapped" + (f" ({kinds})" if kinds else ""))


def to_yaml(spec: dict[str, Any], summary: dict[str, Any], header: str = "") -> str:
    """The spec as YAML, each entry's unmapped lines as comments above it and the summary at the top."""
    lines = [f"# {x}" for x in header.splitlines()] + [f"# import: {summary_line(summary)}"]
    head = {k: v for k, v in spec.items() if k != "entries"}
    lines.append(yaml.safe_dump(head, sort_keys=False, default_flow_style=None, width=118).rstrip())
    lines.append("entries:")
    for d in spec["entries"]:
        for u in d.get("_unmapped", []):
            lines.append(f"  # unmapped ({d['note'].split(':')[0]}): {u}")
        body = {k: v for k, v in d.items() if k != "_unmapped"}
        text = yaml.safe_dump([body], sort_keys=False, default_flow_style=None, width=116, allow_unicode=True)
        lines.extend("  " + x for x in text.rstrip().splitlines())
    return "\n".join(lines) + "\n"
