"""The house rules DESIGN.md states, checked on the source: imports point down the layers and never in a circle,
only lab.runs (lab/runs/) names the files of a run directory, rooms stay small, notebook cells read as sentences."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab"

# Bottom first; a module may import its own layer or lower ones. A new module must be placed here.
LAYERS = [
    ["vocab", "utils", "registry"],
    ["params", "workspace", "liveness", "kernelspec", "runs", "logimport", "user_code", "session", "images", "color", "resize", "metrics", "kernels", "noise_bank", "imcache",
     "sizing", "video", "kernel_estimate",
     "infer_records"],
    ["sources", "prepare", "data", "degrade", "models", "infer", "export"],
    ["losses", "schedules", "callbacks", "mixup", "learner", "recording", "gan", "distributed"],
    ["training", "evaluate", "checks", "execute", "sweep", "inference", "derive"],
    ["ledger", "report", "plots", "widgets", "explorer", "studies", "compare", "lineage", "tracking_export", "watch"],
    ["bench", "bench_data", "cli", "cli_media", "cli_lineage", "__main__"],
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
# Inside a package with an order of its own, a module imports only the ones before it (its __init__ gathers them).
PACKAGE_ORDER = {"studies": ["jobs", "measures", "spec", "planning", "matching", "answers", "waves", "budget", "report"]}
# Function-level imports of lab modules are allowed only here, each for a stated reason (see the module docstrings):
LAZY_OK = {"lab.cli": "commands import what they need, so `lab ledger` starts without torch",
           "lab.cli_media": "as lab.cli: its commands import what they need",
           "lab.cli_lineage": "as lab.cli: its commands import what they need",
           "lab.runs.run": "the read side stays free of torch and OpenCV",
           "lab.training": "lab.gan (fastai.vision and torchvision, seconds) only when a run has an adversarial phase"}
RUN_FILES = ("params.json", "meta.json", "status.json", "history.json", "metrics.json", "notes.jsonl", "profile.json",
             "degradation.json", "data.json", "init_from.json", "guard_events.json", "degradation_samples.json", "runner.log",
             "notebook.ipynb", "last.pth", "best.pth", "final.pth", "degradations.png", "epoch_", "checkpoints/",
             "samples/", "eval/", "summary.json")
MAX_LINES = 620  # "no module over ~600 lines"
MAX_CELL_LINES = 15


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(LAB.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _resolve(target: str) -> str | None:
    """The lab module (or package) an import names, or None for third-party modules."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported lab module, line, inside a function) for every import statement of a module."""
    tree = ast.parse(path.read_text())
    in_func = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_func |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for t in targets:
            mod = _resolve(t)
            if mod and mod != name and not name.startswith(mod + "."):
                out.append((mod, node.lineno, id(node) in in_func))
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _top(mod: str) -> str:
    return mod.split(".")[1] if mod.count(".") else mod


def test_every_module_has_a_layer():
    missing = sorted({_top(m) for m in MODULES if m != "lab" and _top(m) not in LAYER_OF})
    assert not missing, f"place these modules in a layer of LAYERS: {missing}"


def test_imports_point_down_the_layers():
    bad = []
    for mod, imps in GRAPH.items():
        if mod == "lab":
            continue
        for target, line, _ in imps:
            if _top(target) == _top(mod):
                continue  # inside one package
            if LAYER_OF[_top(target)] > LAYER_OF[_top(mod)]:
                bad.append(f"{MODULES[mod].relative_to(ROOT)}:{line} imports {target} (layer "
                           f"{LAYER_OF[_top(target)]} > {LAYER_OF[_top(mod)]})")
    assert not bad, "imports that go up a layer:\n" + "\n".join(bad)


def test_modules_of_an_ordered_package_import_only_earlier_ones():
    bad, missing = [], []
    for pkg, order in PACKAGE_ORDER.items():
        missing += [m for m in MODULES if m.startswith(f"lab.{pkg}.") and m.rpartition(".")[2] not in order]
        for mod in (f"lab.{pkg}.{name}" for name in order):
            for target, line, _ in GRAPH.get(mod, []):
                sub = target.split(".")[2] if target.startswith(f"lab.{pkg}.") else None
                if sub is not None and order.index(sub) >= order.index(mod.rpartition(".")[2]):
                    bad.append(f"{MODULES[mod].relative_to(ROOT)}:{line} imports {target}")
    assert not missing, f"place these modules in PACKAGE_ORDER: {missing}"
    assert not bad, "imports against the package's order:\n" + "\n".join(bad)


def test_no_import_circles():
    edges = {m: {t for t, _, _ in imps} for m, imps in GRAPH.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_lab_imports_sit_at_the_top_of_modules():
    inside = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}" for m, imps in GRAPH.items() if m not in LAZY_OK
              for t, line, in_func in imps if in_func]
    assert not inside, "lab imports inside functions (hoist them, or add the module to LAZY_OK with a reason):\n" + \
        "\n".join(inside)
    for mod in LAZY_OK:
        if mod not in ("lab.cli", "lab.cli_lineage"):  # the CLI says it once in its docstring
            src = MODULES[mod].read_text().splitlines()
            lazy = [line for t, line, in_func in GRAPH[mod] if in_func]
            assert all("lazy" in src[line - 1] for line in lazy), f"{mod}: say why each lazy import is lazy"


def _code_cells(nb: Path) -> list[tuple[int, str, list[str]]]:
    cells = json.loads(nb.read_text())["cells"]
    return [(i, "".join(c["source"]), c.get("metadata", {}).get("tags", [])) for i, c in enumerate(cells)
            if c["cell_type"] == "code"]


def test_only_runs_names_run_directory_files():
    found = []
    for mod, path in MODULES.items():
        if mod == "lab.runs" or mod.startswith("lab.runs."):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            hits = [f for f in RUN_FILES if re.search(rf"[\"'/`(]{re.escape(f)}|\b{re.escape(f)}", line)]
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{n}: {hits} in {line.strip()[:80]!r}")
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, src, tags in _code_cells(nb):
            if "parameters" in tags:
                continue
            hits = [f for f in RUN_FILES if f in src]
            if hits:
                found.append(f"{nb.relative_to(ROOT)} cell {i}: {hits}")
    assert not found, "run-directory files named outside lab.runs (ask lab.runs.Run instead):\n" + "\n".join(found)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_modules_stay_small(mod):
    n = len(MODULES[mod].read_text().splitlines())
    assert n <= MAX_LINES, f"{MODULES[mod].relative_to(ROOT)} has {n} lines; split it along its seams"


@pytest.mark.parametrize("nb", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_notebook_cells_read_as_sentences(nb):
    long = [(i, len(src.strip().splitlines())) for i, src, tags in _code_cells(ROOT / "notebooks" / nb)
            if "parameters" not in tags and len(src.strip().splitlines()) > MAX_CELL_LINES]
    assert not long, f"{nb}: code cells over {MAX_CELL_LINES} lines (move the logic into lab/): {long}"


def test_the_checks_can_fail(tmp_path):
    """The import parser sees function-level and relative imports, so the rules above are not vacuous."""
    p = tmp_path / "m.py"
    p.write_text("from lab import ledger\n\ndef f():\n    from lab.runs import Run\n    import lab.plots\n")
    got = sorted((t, inside) for t, _, inside in _imports("lab.data", p))
    assert got == [("lab.ledger", False), ("lab.plots", True), ("lab.runs", True)]


def _unreferenced(sources: dict[str, str]) -> list[str]:
    """Top-level functions and classes of lab/ that no other text of the project names (decorated ones register
    themselves by name, so they are used through the registry)."""
    words: dict[str, int] = {}
    for text in sources.values():
        for w in re.findall(r"[A-Za-z_]\w*", text):
            words[w] = words.get(w, 0) + 1
    dead = []
    for path, text in sources.items():
        if not (path.startswith("lab/") and path.endswith(".py")):
            continue
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.decorator_list \
                    and words.get(node.name, 0) <= 1:
                dead.append(f"{path}: {node.name}")
    return dead


def _project_texts() -> dict[str, str]:
    texts = {str(p.relative_to(ROOT)): p.read_text() for d in ("lab", "tests") for p in (ROOT / d).rglob("*.py")}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        texts[str(nb.relative_to(ROOT))] = "\n".join(src for _, src, _ in _code_cells(nb))
    texts["README.md"] = (ROOT / "README.md").read_text()
    return texts


def test_no_dead_code():
    """Every top-level function and class in lab/ is named somewhere else (code, tests, notebooks or README)."""
    dead = _unreferenced(_project_texts())
    assert not dead, "defined but never used (delete it, or use it):\n" + "\n".join(dead)


def test_the_dead_code_check_can_fail():
    texts = {"lab/a.py": "def used():\n    pass\n\n\ndef forgotten():\n    pass\n", "tests/t.py": "used()\n"}
    assert _unreferenced(texts) == ["lab/a.py: forgotten"]
