"""Templates stay templates: JupyterLab works on copies; a committed notebook with uncommitted edits is named."""

from __future__ import annotations

import os
import subprocess
import time

from lab.workspace import template_changes, working_copies


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
