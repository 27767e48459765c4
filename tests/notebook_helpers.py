"""Helpers for execution and sweep tests: a quick notebook that records a run in a second (no torch)."""

import json
from pathlib import Path


def _cell(src, tags=None):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags or []}, "outputs": [],
            "source": src}


def write_quick_notebook(path: Path, extra: str = "") -> Path:
    """A notebook that records a run in a second (no torch): params x, sleep, fail, resume."""
    params = ('x = 1              # a number\nsleep = 0.0        # seconds to sleep\n'
              'fail = False       # raise in the last cell\nresume = ""        # checkpoint to continue from\n'
              'run_dir = ""       # set by the runner\n')
    nb = {"cells": [_cell(params, ["parameters"]),
                    _cell('import time, lab.runs\nrun = lab.runs.start({"x": x, "sleep": sleep, "fail": fail, '
                          '"resume": resume}, run_dir=run_dir, name="quick")'),
                    _cell('time.sleep(sleep)\nif fail:\n    raise RuntimeError("boom")\n'
                          'run.finish({"y": x * 2, "resumed_from": resume})' + extra)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path
