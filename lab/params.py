"""Notebook parameters: read a notebook's tagged `parameters` cell, collect resolved values, coerce overrides."""

from __future__ import annotations

import ast
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import yaml

from lab import vocab
from lab.utils import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
RUNNER_PARAMS = ("run_dir",)  # set by the runner (`lab run`): the run directory to execute into
RESUME_PARAM = "resume"  # notebook parameter that names the checkpoint to continue from (set by `lab resume`)
PARENT_PARAM = "parent"  # notebook parameter naming the run this one derives from (recorded in the meta, not params)
EXECUTION_PARAMS = (*RUNNER_PARAMS, RESUME_PARAM, PARENT_PARAM)  # how one execution starts, not what the run is


def notebook_path(name_or_path: str | os.PathLike) -> Path:
    """Resolve `train` / `train.ipynb` / a path to an existing notebook file; error lists the notebooks found.

    A bare name is a template of notebooks/ first, whatever the working directory (a kernel in work/ holds copies
    of the same names); a path with a folder is taken as given."""
    p = Path(name_or_path)
    candidates = [p, p.with_suffix(".ipynb"), NOTEBOOKS_DIR / p, NOTEBOOKS_DIR / p.with_suffix(".ipynb")]
    if len(p.parts) == 1:
        candidates = candidates[2:] + candidates[:2]
    for c in candidates:
        if c.is_file() and c.suffix == ".ipynb":
            return c.resolve()
    known = sorted(q.stem for q in NOTEBOOKS_DIR.glob("*.ipynb"))
    raise FileNotFoundError(f"notebook {str(name_or_path)!r} not found; notebooks in {NOTEBOOKS_DIR}: {known}")


def parameters_cell(nb_path: str | os.PathLike) -> str:
    """Source of the cell tagged `parameters` (papermill's convention); error if there is none."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    raise ValueError(f"{nb_path} has no code cell tagged 'parameters'; tag one so papermill can inject values")


def notebook_defaults(nb: str | os.PathLike) -> dict[str, Any]:
    """Names and literal default values of a notebook's parameters cell, in order."""
    src = parameters_cell(notebook_path(nb))
    out: dict[str, Any] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError as e:
                raise ValueError(f"parameter {node.targets[0].id!r} in {nb} is not a literal; "
                                 "keep the parameters cell to plain values and derive in the next cell") from e
    return out


def collect(namespace: dict[str, Any], nb: str | os.PathLike) -> dict[str, Any]:
    """The full resolved params of the experiment: every name of the notebook's parameters cell, valued as in
    `namespace` now, except the execution ones (run_dir, resume)."""
    return check({k: namespace.get(k, v) for k, v in notebook_defaults(nb).items() if k not in EXECUTION_PARAMS})


def matching(namespace: dict[str, Any], nb: str | os.PathLike, fn: Callable[..., Any], **given: Any) -> dict[str, Any]:
    """The notebook parameters `fn` takes by name, valued as in `namespace` now (what the kernel holds, so a
    parameter fixed and re-run is the one used), with `given` values on top, e.g.
    `lab.data.dataloaders(**matching(globals(), "train", lab.data.dataloaders, device=dev))`."""
    takes = inspect.signature(fn).parameters
    bad = [k for k in given if k not in takes]
    if bad:
        raise TypeError(f"{fn.__name__} takes no {bad}")
    out = {k: namespace.get(k, v) for k, v in notebook_defaults(nb).items() if k in takes and k not in EXECUTION_PARAMS}
    return {**out, **given}


def _parse_value(text: str) -> Any:
    """A command-line value: int, float (1e-3 too), or YAML (true, null, lists, dicts), else the string."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return text


def coerce(name: str, value: Any, default: Any) -> Any:
    """Convert a command-line string override to the type of the parameter's default value."""
    if not isinstance(value, str):
        return value
    if isinstance(default, str):
        return value
    parsed = _parse_value(value)
    if default is None or parsed is None:
        return parsed
    if isinstance(default, bool):
        if not isinstance(parsed, bool):
            raise ValueError(f"parameter {name!r} expects true/false, got {value!r}")
        return parsed
    if isinstance(default, int) and isinstance(parsed, float) and parsed.is_integer():
        return int(parsed)
    if isinstance(default, float) and isinstance(parsed, int) and not isinstance(parsed, bool):
        return float(parsed)
    if type(parsed) is not type(default) and not (isinstance(default, (list, tuple)) and isinstance(parsed, list)):
        kind = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(
            type(default), type(default).__name__)
        raise ValueError(f"parameter {name!r} expects {kind} like {default!r}, got {value!r}")
    return parsed


def resolve(nb: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of notebook `nb` with `overrides` applied (typed and checked, see `check`); unknown names fail
    listing the known ones."""
    defaults = notebook_defaults(nb)
    overrides = overrides or {}
    unknown = [k for k in overrides if k not in defaults]
    if unknown:
        raise KeyError(f"unknown parameter(s) {unknown} for notebook {Path(nb).stem!r}; known: {list(defaults)}")
    return check({k: coerce(k, overrides[k], v) if k in overrides else v for k, v in defaults.items()})


# What the notebooks' numeric and fixed-choice parameters accept (names are shared across notebooks; a name not
# listed is not checked here; registered names such as models and losses are checked by lab.checks).
AT_LEAST_1 = ("epochs", "batch_size", "patch_size", "repeat", "procs", "samples")
AT_LEAST_0 = ("scale", "steps", "valid_every", "save_every", "gan_epochs", "critic_pretrain", "profile_size",
              "valid_max_size", "seed", "tile", "size")  # scale 0: the model's own (evaluate); train needs >= 1
POSITIVE = ("lr", "gan_lr", "eps")
NON_NEGATIVE = ("wd", "mixup", "adv_weight", "time_budget")
FINITE = ("clip",)
CHOICES = {"amp": vocab.AMP_MODES, "clip_mode": vocab.CLIP_MODES, "mixup_space": vocab.MIXUP_SPACES,
           "switcher": vocab.SWITCHERS, "gan_loss": vocab.ADV_LOSSES, "degrade_on": vocab.DEGRADE_ON}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check(params: dict[str, Any]) -> dict[str, Any]:
    """`params` if every value is in its range; else ValueError naming the parameter, the accepted values and an
    example (`-p epochs 5`)."""
    def bad(name: str, wants: str, example: Any) -> ValueError:
        return ValueError(f"parameter {name!r} must be {wants}, got {params[name]!r}; e.g. -p {name} {example}")

    for k, v in params.items():
        if k in AT_LEAST_1 and not (_is_int(v) and v >= 1):
            raise bad(k, "an integer >= 1", 4)
        if k in AT_LEAST_0 and not (_is_int(v) and v >= 0):
            raise bad(k, "an integer >= 0", 0)
        if k in POSITIVE and not (_is_real(v) and math.isfinite(v) and v > 0):
            raise bad(k, "a finite number > 0", "1e-3")
        if k in NON_NEGATIVE and not (_is_real(v) and math.isfinite(v) and v >= 0):
            raise bad(k, "a finite number >= 0", 0)
        if k in FINITE and not (_is_real(v) and math.isfinite(v)):
            raise bad(k, "a finite number (0: off)", 0)
        if k == "ema" and not (_is_real(v) and 0 <= v < 1):
            raise bad(k, "a decay in [0, 1) (0: off)", 0.999)
        if k == "betas" and not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_real(b) and 0 <= b < 1
                                                                                      for b in v)):
            raise bad(k, "two numbers in [0, 1)", '"[0.9, 0.999]"')
        if k == "num_workers" and not ((_is_int(v) and v >= 0) or v == "auto" or (isinstance(v, str) and v.isdigit())):
            raise bad(k, "an integer >= 0 or 'auto'", 2)
        if k in CHOICES and v not in CHOICES[k]:
            raise bad(k, f"one of {CHOICES[k]}", CHOICES[k][0])
    return params
