"""A run started in a live kernel keeps a true record: a failing cell, a stop, a fix-and-continue, the start cell run
again, a kernel shutdown, the params that trained, and the notebook of what ran. Driven through a real kernel."""

from __future__ import annotations

import json
import os
import time

import pytest
from jupyter_client.manager import start_new_kernel
from notebook_helpers import write_quick_notebook

from lab import runs
from lab.execute import kernel_for

pytestmark = pytest.mark.slow


class Kernel:
    """A kernel started as JupyterLab starts one (no runner variables), cells run one by one."""

    def __init__(self, tmp_path, nb):
        env = {k: v for k, v in os.environ.items() if k not in ("LAB_PAPERMILL", "LAB_STATIC")}
        env.update(LAB_RUNS_DIR=str(tmp_path / "runs"), JPY_SESSION_NAME=str(nb))
        self.km, self.kc = start_new_kernel(kernel_name=kernel_for(nb), env=env, cwd=str(tmp_path))

    def run(self, code: str, timeout: float = 60) -> dict:
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
        return reply["content"]

    def close(self):
        if self.km.is_alive():
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernel(tmp_path):
    nb = write_quick_notebook(tmp_path / "quick.ipynb")
    k = Kernel(tmp_path, nb)
    k.run(f"NB = {str(nb)!r}")
    yield k, tmp_path / "runs"
    k.close()


START = 'import lab.session\nrun = lab.session.start({"x": x, "sleep": sleep, "fail": fail}, run_dir=run_dir, nb=NB)'


def test_failure_fix_and_continue_is_recorded_truthfully(kernel):
    k, root = kernel
    k.run('x = 1              # a number\nsleep = 0.0\nfail = False\nresume = ""\nrun_dir = ""')
    k.run(START)
    (run,) = runs.scan(root)
    assert run.status == "running"
    assert k.run('raise ValueError("typo in the loss")')["status"] == "error"
    assert run.status == "failed"
    assert run.error["type"] == "ValueError"
    assert "typo" in run.error["message"]
    assert "typo in the loss" in run.error["source"]
    k.run("x = 2")  # the user fixes the parameter and goes on from the failed cell
    k.run("lab.session.sync_params(run, 'train')\nrun.finish({'y': x})")
    st = run.status_record
    assert st["status"] == "done", "the failure is kept"
    assert [e["type"] for e in st["errors"]] == ["ValueError"], "the failure is kept"
    assert run.params["x"] == 2, "params.json holds the value that trained"
    assert run.meta["param_changes"][0]["changed"] == {"x": [1, 2]}
    nb = json.loads(run.notebook.read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert sources[0].startswith("x = 1")
    assert any("typo" in s for s in sources)
    assert sources[-1].startswith("lab.")
    errors = [o for c in nb["cells"] for o in c["outputs"] if o["output_type"] == "error"]
    assert errors
    assert errors[0]["ename"] == "ValueError"


def test_stop_rerun_of_the_start_cell_and_kernel_shutdown(kernel):
    k, root = kernel
    k.run('x = 1\nsleep = 0.0\nfail = False\nresume = ""\nrun_dir = ""')
    k.run(START)
    (first,) = runs.scan(root)
    msg = k.kc.execute("import time\nprint('training...')\ntime.sleep(30)")
    time.sleep(2)
    k.km.interrupt_kernel()
    k.kc.get_shell_msg(timeout=30)  # the cell ends with the KeyboardInterrupt
    assert msg
    assert first.status == "stopped"
    assert first.error["type"] == "KeyboardInterrupt"
    k.run(START)  # Run All again: nothing was trained in the first run, so its directory is reused
    assert [r.name for r in runs.scan(root)] == [first.name]
    assert first.status == "running"
    first.log_epoch({"epoch": 0, "psnr_y": 30.0})  # now it has trained something
    k.run(START)
    second = runs.scan(root)[-1]
    assert second.name != first.name
    assert first.status == "stopped"
    assert "superseded" in first.error["message"]
    k.close()  # a restart shuts the kernel down
    assert second.status == "stopped"
    assert "kernel shut down" in second.error["message"]
