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
