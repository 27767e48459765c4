"""Project set-up: environment.yml agrees with pyproject, CI calls the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in proj["dependencies"] + proj["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_norm(r) for r in pip} == wanted


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_torch_pair_pinned_in_makefile():
    mk = (ROOT / "Makefile").read_text()
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in ("torch==2.14.1", "torchvision==0.29.1"):
        assert pin in mk and pin in proj
