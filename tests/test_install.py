"""Install routes, each into a fresh environment in a temporary folder: `pip install -e .` then the first `lab`
command (it registers the `restoration-lab` kernel that a bare papermill call then finds), and `pip install .`,
which the lab refuses in one line (it runs from its clone). The conda route (environment.yml) is checked by parsing
in test_setup.py: conda is not installed here.

The dependencies (torch alone is 5.5 GB) are not installed again: the fresh venv is made without pip and sees this
environment's site-packages through a .pth file, so what each test proves is the lab's own install (metadata,
entry point, editable finder, kernel registration), not the download of its dependencies (`make setup` in CI is
that test). The build backend (setuptools) is fetched as pip does by default, in an isolated build environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    """No PYTHONPATH (the install under test must find the lab), a Jupyter data dir of its own (no user kernels)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH", "VIRTUAL_ENV")}
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-user")
    env["LAB_RUNS_DIR"] = str(tmp_path / "runs")
    return env


def _fresh_venv(tmp_path: Path) -> Path:
    """A venv without pip whose Python also sees this environment's packages; returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _pip(py: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                           *args], capture_output=True, text=True, env=env, timeout=600)


def test_pip_install_editable_then_the_first_lab_command_registers_the_kernel(tmp_path):
    env = _env(tmp_path)
    py = _fresh_venv(tmp_path)
    t0 = time.monotonic()
    got = _pip(py, "-e", str(ROOT), env=env)
    assert got.returncode == 0, got.stderr
    took = time.monotonic() - t0
    lab = py.parent / "lab"
    first = subprocess.run([str(lab), "ledger"], capture_output=True, text=True, env=env, timeout=300)
    print(f"pip install -e . took {took:.0f} s; first `lab ledger`: {first.stderr.strip()} | {first.stdout.strip()}")
    assert first.returncode == 0, first.stderr
    spec_dir = py.parent.parent / "share" / "jupyter" / "kernels" / "restoration-lab"
    assert f"registered the Jupyter kernel 'restoration-lab' for {py}" in first.stderr
    assert json.loads((spec_dir / "kernel.json").read_text())["argv"][0] == str(py)
    again = subprocess.run([str(lab), "ledger"], capture_output=True, text=True, env=env, timeout=300)
    assert "registered" not in again.stderr, "registered once"
    version = subprocess.run([str(py), "-m", "lab", "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.startswith("lab (restoration-lab) ")

    # a bare papermill call on a notebook naming the kernel (as every notebook of the lab does) runs this venv
    nb = tmp_path / "probe.ipynb"
    code = "import sys, lab\nprint(sys.executable, lab.__file__)"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": code, "outputs": [],
                                         "execution_count": None}],
                              "metadata": {"kernelspec": {"name": "restoration-lab", "language": "python",
                                                          "display_name": "Python (restoration-lab)"}},
                              "nbformat": 4, "nbformat_minor": 5}))
    ran = subprocess.run([str(py), "-m", "papermill", str(nb), str(tmp_path / "out.ipynb")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    out = json.loads((tmp_path / "out.ipynb").read_text())["cells"][0]["outputs"][0]["text"]
    printed_python, printed_lab = "".join(out).split()
    assert printed_python == str(py)
    assert printed_lab == str(ROOT / "lab" / "__init__.py")


def test_pip_install_non_editable_is_refused_in_one_line(tmp_path):
    env = _env(tmp_path)
    target = tmp_path / "site"
    t0 = time.monotonic()
    got = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--target", str(target), str(ROOT)], capture_output=True, text=True, env=env, timeout=600)
    assert got.returncode == 0, got.stderr
    took = time.monotonic() - t0
    first = subprocess.run([sys.executable, "-m", "lab", "ledger"], capture_output=True, text=True, timeout=300,
                           env={**env, "PYTHONPATH": str(target)}, cwd=tmp_path)
    print(f"pip install . took {took:.0f} s; first `lab ledger`: {first.stderr.strip()}")
    assert first.returncode == 2
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "the lab runs from its clone; there, `pip install -e .`" in lines[0]
    assert not (target / "runs").exists(), "nothing created beside site-packages"
