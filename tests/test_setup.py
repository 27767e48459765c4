"""Project set-up: one lock that `make setup`, CI and environment.yml install from, every import declared, CI calls
the README's test command."""

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements() -> list[Requirement]:
    proj = _project()
    extras = [r for reqs in proj["optional-dependencies"].values() for r in reqs]
    return [Requirement(r) for r in proj["dependencies"] + extras]


def _lock() -> dict[str, str]:
    """The lock's pins that apply to this Python and platform: {canonical name: version}."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)(?:\s*;\s*(.+))?$", line.strip())
        if m and (m.group(3) is None or Marker(m.group(3)).evaluate()):
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def test_the_lock_pins_every_dependency_within_pyprojects_ranges():
    """A dependency added to pyproject.toml without `make lock` (or a range the lock falls outside) fails here."""
    pins = _lock()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), f"{req} vs lock {pins[name]}: make lock"


def test_this_environment_is_what_the_lock_says():
    """`make setup` (CI's first step) installs through the lock: every locked package installed here has the locked
    version (torch's build label, +cpu or +cuXYZ, aside), and every dependency is installed."""
    pins = _lock()
    wrong = {n: (v, _installed(n)) for n, v in pins.items()
             if _installed(n) is not None and Version(_installed(n)).public != Version(v).public}
    assert not wrong, f"installed versions differ from requirements.lock (locked, installed): {wrong}; make setup"
    missing = [r.name for r in _requirements() if _installed(r.name) is None]
    assert not missing, f"not installed: {missing}; make setup"


def test_setup_ci_and_conda_install_through_the_lock():
    mk = (ROOT / "Makefile").read_text()
    recipe = mk.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [ln for ln in recipe.splitlines() if "pip install" in ln and "--upgrade pip" not in ln]
    assert len(installs) == 2, installs
    for ln in installs:
        assert "-c $(LOCK)" in ln, ln
    assert "LOCK := requirements.lock" in mk
    assert "uv pip compile pyproject.toml" in mk.split("\nlock:", 1)[1]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == ["-c requirements.lock", "-e .[dev]"], "conda installs the lab itself through the lock"
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Requirement(f"python{_project()['requires-python']}").specifier.contains(py.split("=", 1)[1] + ".0")


def test_every_third_party_import_of_the_lab_is_declared():
    """tqdm, scipy, IPython, psutil ...: a module lab/ imports comes from a distribution pyproject.toml names."""
    declared = {canonicalize_name(r.name) for r in _requirements()}
    dists = packages_distributions()
    missing = {}
    for path in (ROOT / "lab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for mod in (n.split(".")[0] for n in names):
                if mod in sys.stdlib_module_names or mod == "lab":
                    continue
                if not declared & {canonicalize_name(d) for d in dists.get(mod, [mod])}:
                    missing[mod] = str(path.relative_to(ROOT))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_pytest_timeout_has_session_timeout():
    """.ci/run passes --session-timeout, which pytest-timeout has from 2.3 on."""
    req = next(r for r in _requirements() if r.name == "pytest-timeout")
    assert not req.specifier.contains("2.2.9")
    assert "--session-timeout" in (ROOT / ".ci" / "run").read_text()


def _test_command_runs(ci_text: str, command: str) -> bool:
    """Whether a shell script runs `command` itself as a command line (not a weaker variant such as
    `make test-fast`, not in a comment or an echo)."""
    for line in ci_text.splitlines():
        code = line.split("#", 1)[0].strip()
        if re.fullmatch(rf"(\S+=\S+\s+)*{re.escape(command)}", code):
            return True
    return False


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"`(make test|pytest[^`]*)`", readme).group(1)
    assert command == "make test"
    assert "make demo" in readme
    assert _test_command_runs((ROOT / ".ci" / "run").read_text(), command)


def test_ci_keeps_the_slow_tests():
    """make test leaves out tests marked slow; CI runs them too (make test-slow), so none leaves CI."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert _test_command_runs(ci, "make test-slow"), ".ci/run does not run make test-slow"
    recipes = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-slow:.*\n\t.*pytest -q -m slow$", recipes, re.M), "make test-slow runs -m slow"
    assert re.search(r"^test: lint\n\t.*pytest -q -m \"not slow\"$", recipes, re.M), "make test runs -m 'not slow'"


def test_the_ci_check_fails_on_a_weaker_command():
    assert not _test_command_runs("make setup\nmake test-fast\n", "make test")
    assert not _test_command_runs("# make test\necho make test\n", "make test")
    assert _test_command_runs("export CI=1\nFOO=1 make test\n", "make test")


def test_torch_pair_pinned_in_makefile():
    mk = (ROOT / "Makefile").read_text()
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in ("torch==2.14.1", "torchvision==0.29.1"):
        assert pin in mk
        assert pin in proj
