"""A run started in a live kernel keeps a true record: a failing cell, a stop, a fix-and-continue, the start cell run
again, a kernel shutdown, the params that trained, and the notebook of what ran (from its own parameters cell to
its own last cell). The extension's contract: hooks added by `%load_ext lab.session`, removed by `%unload_ext`.
A kernel started by a runner that dies records the run interrupted and shuts down. Driven through real kernels."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from jupyter_client.manager import start_new_kernel
from notebook_helpers import write_quick_notebook

from lab import runs
from lab.execute import kernel_for
from lab.params import parameters_cell

pytestmark = pytest.mark.slow


class Kernel:
    """A kernel started as JupyterLab starts one (no runner variables), cells run one by one."""

    def __init__(self, tmp_path, nb, env_extra=None, drop=("LAB_PAPERMILL", "LAB_STATIC", "LAB_RUNNER_PID")):
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(LAB_RUNS_DIR=str(tmp_path / "runs"), JPY_SESSION_NAME=str(nb), **(env_extra or {}))
        self.km, self.kc = start_new_kernel(kernel_name=kernel_for(nb), env=env, cwd=str(tmp_path))

    def run(self, code: str, timeout: float = 60, cell_id: str | None = None) -> dict:
        """Execute `code` as a front end does; with `cell_id` the request names the notebook cell, as JupyterLab's."""
        if cell_id is None:
            return self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)["content"]
        msg = self.kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                      "user_expressions": {}, "allow_stdin": False,
                                                      "stop_on_error": True}, metadata={"cellId": cell_id})
        self.kc.shell_channel.send(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
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
    yield k, tmp_path / "runs", parameters_cell(nb)
    k.close()


START = ('import lab.session\ns = lab.session.start({"x": x, "sleep": sleep, "fail": fail}, run_dir=run_dir, nb=NB)\n'
         'run = s.run')


def _sources(run):
    return ["".join(c["source"]) for c in json.loads(run.notebook.read_text())["cells"]]


def test_failure_fix_and_continue_is_recorded_truthfully(kernel):
    k, root, params = kernel
    k.run(params)
    k.run(START)
    (run,) = runs.scan(root)
    assert run.status == "running"
    assert run.meta["parameters_cell"] == "recorded"
    assert k.run('print("step 1")\nraise ValueError("typo in the loss")')["status"] == "error"
    assert run.status == "failed"
    assert run.error["type"] == "ValueError"
    assert "typo" in run.error["message"]
    assert "typo in the loss" in run.error["source"]
    k.run("x = 2")  # the user fixes the parameter and goes on from the failed cell
    k.run("s.sync_params('train')\nrun.finish({'y': x})")
    st = run.status_record
    assert st["status"] == "done", "the failure is kept"
    assert [e["type"] for e in st["errors"]] == ["ValueError"], "the failure is kept"
    assert run.params["x"] == 2, "params.json holds the value that trained"
    assert run.meta["param_changes"][0]["changed"] == {"x": [1, 2]}
    nb = json.loads(run.notebook.read_text())
    sources = _sources(run)
    assert sources[0].strip() == params.strip(), "the notebook starts with the parameters cell as it ran"
    assert any("typo" in s for s in sources)
    assert sources[-1].startswith("s.sync_params")
    failed = next(c for c in nb["cells"] if "typo" in "".join(c["source"]))
    assert [o["output_type"] for o in failed["outputs"]] == ["stream", "error"], "printed text and error, in order"
    assert failed["outputs"][0]["text"] == "step 1\n"
    assert failed["outputs"][1]["ename"] == "ValueError"


def test_the_parameters_cell_is_the_tagged_one_by_cell_id(kernel, tmp_path):
    k, root, params = kernel
    nb_file = tmp_path / "quick.ipynb"
    _with_cell_id(nb_file, 0, "params-cell")
    k.run("%load_ext lab.session", cell_id="load")  # the template's first code cell
    k.run("x = 5\nsleep = 0.0\nfail = False\nresume = ''\nrun_dir = ''", cell_id="params-cell")  # edited, unsaved
    k.run("x = 7  # a scratch cell that assigns parameters too", cell_id="scratch")
    k.run(START, cell_id="start")
    (run,) = runs.scan(root)
    sources = _sources(run)
    assert sources[0].startswith("x = 5"), "the cell with the tagged cell's id, as it ran, not the scratch cell"
    assert sources[1].startswith("x = 7"), "the cells after the parameters cell up to the start cell follow it"
    assert run.meta["working_copy"] == str(nb_file)


def _with_cell_id(nb_file, index, cell_id):
    nb = json.loads(nb_file.read_text())
    nb["cells"][index]["id"] = cell_id
    nb_file.write_text(json.dumps(nb))


def test_run_all_twice_each_notebook_ends_with_its_own_cells(kernel, tmp_path):
    k, root, params = kernel
    _with_cell_id(tmp_path / "quick.ipynb", 0, "params-cell")
    k.run("%load_ext lab.session", cell_id="load")
    k.run(params, cell_id="params-cell")
    k.run(START, cell_id="start")
    k.run("run.finish({'y': x})", cell_id="end")
    k.run("print('ledger of the first run')", cell_id="ledger")
    first = runs.scan(root)[0]
    k.run(params.replace("x = 1", "x = 3"), cell_id="params-cell")  # Run All again, another value (unsaved)
    k.run(START, cell_id="start")
    second = runs.scan(root)[-1]
    assert second.name != first.name
    assert first.status == "done"
    assert _sources(first)[-1] == "print('ledger of the first run')", "the next run's parameters cell is not here"
    assert _sources(second)[0].startswith("x = 3")
    assert second.params["x"] == 3


def test_an_attempt_run_by_another_process_is_never_rewritten(kernel):
    k, root, params = kernel
    k.run(params)
    k.run(START)
    (run,) = runs.scan(root)
    run.log_epoch({"epoch": 0, "psnr_y": 30.0})  # another process (a `lab resume`) now runs the attempt
    run.write_notebook({"cells": [], "metadata": {"attempt": "resumed"}, "nbformat": 4, "nbformat_minor": 5})
    run.finish({"y": 1})
    k.run("x = 4")
    k.run(START)  # Run All again in the same kernel: a new run, the resumed one untouched
    assert json.loads(run.notebook.read_text())["metadata"] == {"attempt": "resumed"}
    assert run.status == "done"
    assert len(runs.scan(root)) == 2


def test_stop_rerun_of_the_start_cell_and_kernel_shutdown(kernel):
    k, root, params = kernel
    k.run(params)
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
    k.run('run.log_epoch({"epoch": 0, "psnr_y": 30.0})')  # now it has trained something
    k.run(START)
    second = runs.scan(root)[-1]
    assert second.name != first.name
    assert first.status == "stopped"
    assert "superseded" in first.error["message"]
    k.close()  # a restart shuts the kernel down
    assert second.status == "stopped"
    assert "kernel shut down" in second.error["message"]


def test_the_extension_adds_its_hooks_and_removes_them(kernel):
    k, _, _ = kernel
    count = ("ip = get_ipython()\nn_hooks = (len(ip.events.callbacks['pre_run_cell']), "
             "len(ip.events.callbacks['post_run_cell']), len(ip.display_pub._hooks))")
    k.run(count + "\nbefore = n_hooks")
    k.run("%load_ext lab.session")
    k.run(count + "\nloaded = n_hooks")
    k.run("%unload_ext lab.session")  # IPython calls lab.session.unload_ipython_extension
    k.run(count + "\nassert n_hooks == before, (n_hooks, before)\nassert loaded == tuple(b + 1 for b in before)")
    assert k.run("assert n_hooks == before")["status"] == "ok"
    assert k.run("assert loaded == tuple(b + 1 for b in before), (loaded, before)")["status"] == "ok"
    assert k.run("import sys\nassert sys.stdout.write.__module__ != 'lab.session'")["status"] == "ok", \
        "the output streams are not patched"


def test_a_kernel_whose_runner_dies_records_interrupted_and_shuts_down(tmp_path):
    nb = write_quick_notebook(tmp_path / "quick.ipynb")
    run = runs.create({"x": 1}, root=tmp_path / "runs", name="orphan")
    runner = subprocess.Popen(["sleep", "120"])
    k = Kernel(tmp_path, nb, env_extra={"LAB_PAPERMILL": "1", "LAB_RUNNER_PID": str(runner.pid)}, drop=())
    try:
        k.run(f"import lab.session\ns = lab.session.start({{'x': 1}}, run_dir={str(run.dir)!r}, nb={str(nb)!r})")
        assert run.status == "running"
        k.kc.execute("import time\ntime.sleep(120)")  # a long cell, as training is
        time.sleep(1)
        runner.kill()
        runner.wait()
        deadline = time.monotonic() + 30
        while k.km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert run.status == "interrupted"
        assert "runner process" in run.error["message"]
        assert not k.km.is_alive(), "the kernel shut down when its runner died"
    finally:
        runner.kill()
        k.close()
