"""Templates stay templates: JupyterLab works on copies; a committed notebook with uncommitted edits is named."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from lab.utils import PROJECT_ROOT
from lab.workspace import jupyter_command, template_changes, working_copies


def test_working_copies_are_made_once_and_never_overwritten(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "train.ipynb").write_text('{"v": 1}')
    work = tmp_path / "work"
    assert working_copies(work, tmp_path / "templates") == [f"{work / 'train.ipynb'}: new copy of "
                                                             f"{tmp_path / 'templates' / 'train.ipynb'}"]
    (work / "train.ipynb").write_text('{"v": "my edits"}')
    assert working_copies(work, tmp_path / "templates") == []
    time.sleep(0.01)
    (tmp_path / "templates" / "train.ipynb").write_text('{"v": 2}')
    os.utime(tmp_path / "templates" / "train.ipynb")
    msg = working_copies(work, tmp_path / "templates")
    assert len(msg) == 1
    assert "yours is kept" in msg[0]
    assert (work / "train.ipynb").read_text() == '{"v": "my edits"}'


def test_template_changes_show_the_diff(tmp_path):
    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    nb = tmp_path / "train.ipynb"
    nb.write_text('{"patch_size": 48}\n')
    git("add", "train.ipynb")
    git("commit", "-qm", "template")
    assert template_changes(nb) == ""
    nb.write_text('{"patch_size": 24}\n')
    diff = template_changes(nb)
    assert '-{"patch_size": 48}' in diff
    assert '+{"patch_size": 24}' in diff


def test_lab_jupyter_passes_every_argument_to_jupyter_and_allows_root(tmp_path, monkeypatch):
    from lab import cli

    seen = {}

    def fake_execv(path, argv):
        seen["argv"] = argv
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", fake_execv)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(SystemExit):
        cli.main(["jupyter", "--port", "8890", "--dir", str(tmp_path / "work"), "--ServerApp.port_retries=0"])
    argv = seen["argv"]
    assert argv[argv.index("--allow-root") + 1:] == ["--port", "8890", "--ServerApp.port_retries=0"]
    assert f"--ServerApp.root_dir={tmp_path / 'work'}" in argv
    assert (tmp_path / "work" / "runs").resolve() == (tmp_path / "runs").resolve(), "runs/ shows beside the copies"
    assert (tmp_path / "work" / "train.ipynb").is_file()


def test_jupyter_command_as_root_or_a_user(tmp_path):
    as_user = jupyter_command(tmp_path, "t", ["--", "--port", "9"], as_root=False)
    assert "--allow-root" not in as_user
    assert as_user[-2:] == ["--port", "9"], "a leading -- is dropped, the rest passed in order"
    as_root = jupyter_command(tmp_path, "t", [], as_root=True)
    assert as_root[-1] == "--allow-root"
    assert jupyter_command(tmp_path, "t", ["--allow-root"], as_root=True).count("--allow-root") == 1


def test_make_lab_passes_its_arguments_to_lab_jupyter():
    out = subprocess.run(["make", "-n", "-o", ".venv/.setup-done", "lab", "JUPYTER_ARGS=--port 8890"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert "lab jupyter --port 8890" in out


def test_a_bare_notebook_name_is_the_template_whatever_the_working_directory(tmp_path, monkeypatch):
    from lab.params import NOTEBOOKS_DIR, notebook_path
    from lab.studies import load_study

    shutil.copy(NOTEBOOKS_DIR / "train.ipynb", tmp_path / "train.ipynb")  # a working copy, as in work/
    monkeypatch.chdir(tmp_path)
    assert notebook_path("train") == NOTEBOOKS_DIR / "train.ipynb"
    assert notebook_path("train.ipynb") == NOTEBOOKS_DIR / "train.ipynb"
    assert notebook_path(tmp_path / "train.ipynb") == tmp_path / "train.ipynb", "a path is taken as given"
    assert load_study("edsr")["sweep"] == "edsr", "studies are found from work/ too"


def test_a_working_copy_carries_the_kernels_language_info(tmp_path):
    """JupyterLab writes the kernel's language_info into a notebook it opens: a copy holding it already is not
    modified by opening it (the browser check is tests/test_browser.py)."""
    import json

    from lab.params import notebook_path
    from lab.workspace import kernel_language_info

    templates, work = tmp_path / "templates", tmp_path / "work"
    templates.mkdir()
    shutil.copy2(notebook_path("train"), templates / "train.ipynb")
    working_copies(work, templates)
    template = json.loads((templates / "train.ipynb").read_text())
    copy = json.loads((work / "train.ipynb").read_text())
    assert template["metadata"]["language_info"] == {"name": "python"}, "the committed template stays plain"
    assert copy["metadata"]["language_info"] == kernel_language_info()
    assert copy["metadata"]["language_info"]["version"].count(".") == 2, copy["metadata"]["language_info"]
    assert copy["cells"] == template["cells"]
    assert copy["metadata"]["kernelspec"] == template["metadata"]["kernelspec"]
    os.utime(templates / "train.ipynb", (time.time() + 5, time.time() + 5))  # touched, not changed (a checkout)
    assert working_copies(work, templates) == [], "an unchanged template is not reported"
