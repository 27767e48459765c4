"""A real browser: JupyterLab on localhost, as a user meets it. The ledger notebook's swipe slider moves and the
image changes; the train notebook's Run All is recorded done, a failing Run All failed with its cell, a fix of the
parameter followed by running on from the failed cell done with the fixed value, and notebooks/ stays unchanged.

Needs Debian's Chromium (`apt-get install -y chromium`, or $LAB_CHROMIUM) and the Python `playwright` package
(never `playwright install`: the system Chromium is driven through `executable_path`). Skipped with the reason when
either is missing, except in CI (`CI` set), where it fails instead. The screenshot lands in test-artifacts/.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from demo_runs import make_demo_runs

from lab.params import notebook_path
from lab.utils import PROJECT_ROOT
from lab.workspace import as_working_copy, jupyter_command, link_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
KERNEL_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""  # the notebook's kernel is up and connected: commands sent now are not lost


def _need_browser() -> None:
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install -y chromium, or set LAB_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (pip install playwright; no `playwright install` needed)")
    if missing:
        msg = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; CI must run it (.ci/run installs them)")
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp_path, runs_root, notebooks):
    """JupyterLab on 127.0.0.1 with a token, started with `lab jupyter`'s command line (as root: --allow-root)
    over working copies of `notebooks` and the `runs` link beside them, runs under `runs_root`; yields (base url,
    token, served folder)."""
    _need_browser()
    served = tmp_path / "nb"
    served.mkdir()
    for name in notebooks:  # working copies, as `lab jupyter` makes them: the committed notebooks stay templates
        (served / f"{name}.ipynb").write_bytes(as_working_copy(notebook_path(name)))
    link_runs(served, runs_root)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_PAPERMILL", "LAB_STATIC")}
    env.update(LAB_RUNS_DIR=str(runs_root), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"))
    cmd = jupyter_command(served, token, ["--port", str(port), "--LabApp.expose_app_in_browser=True",
                                          "--LabApp.news_url=", "--ServerApp.port_retries=0",
                                          "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"])
    log = open(tmp_path / "jupyter.log", "wb")
    proc = subprocess.Popen(cmd, cwd=served, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"JupyterLab did not start: {(tmp_path / 'jupyter.log').read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield base, token, served
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


@pytest.fixture
def jupyter(tmp_path):
    """JupyterLab serving a copy of the ledger notebook, runs from two demo runs."""
    runs_root = tmp_path / "runs"
    make_demo_runs(runs_root, n=2)
    yield from serve(tmp_path, runs_root, ["ledger"])


NOTEBOOKS = ["train", "ledger", "studies", "evaluate", "degradations", "infer"]


def test_every_notebook_opens_unmodified_in_jupyterlab(tmp_path):
    """Opening a notebook and letting its kernel start changes nothing: no unsaved-changes mark until the user
    edits (JupyterLab writes the kernel's language_info into the notebook; the working copy holds it already)."""
    from playwright.sync_api import sync_playwright

    gen = serve(tmp_path, tmp_path / "runs", NOTEBOOKS)
    base, token, served = next(gen)
    dirty = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                lab = Lab(browser.new_page(viewport={"width": 1400, "height": 1000}))
                for name in NOTEBOOKS:
                    lab.open(base, token, f"{name}.ipynb")
                    lab.page.wait_for_timeout(1500)  # the kernel's info has reached the notebook's metadata
                    dirty[name] = lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
                lab.open(base, token, "train.ipynb")
                lab.set_cell(0, "# a user's edit")  # the control: an edit does mark it
                edited = lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
            finally:
                browser.close()
    finally:
        gen.close()
    assert dirty == dict.fromkeys(NOTEBOOKS, False), dirty
    assert edited is True


def test_swipe_slider_changes_image_in_jupyterlab(jupyter):
    from playwright.sync_api import sync_playwright

    base, token, _ = jupyter
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ledger-swipe.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/ledger.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand("
                                   "'notebook:run-all-cells')", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)
            # fire and forget: the command's promise settles only when every cell has run
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            handle = page.wait_for_selector(".lab-swipe .noUi-handle", timeout=180_000)
            img = page.locator(".lab-swipe img").first
            page.wait_for_function("el => el.src && el.src.startsWith('blob:') && el.naturalWidth > 0",
                                   arg=img.element_handle(), timeout=30_000)
            before = img.get_attribute("src")
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] - 80, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("([el, old]) => el.src !== old && el.naturalWidth > 0",
                                   arg=[img.element_handle(), before], timeout=30_000)
            readout = page.locator(".lab-swipe .widget-readout").first.inner_text()
            news = page.locator(".jp-Notification-Toast-Close, .jp-toast-button:has-text('No')")
            if news.count():  # JupyterLab asks about its news feed; not part of the picture
                news.first.click()
            page.locator(".lab-swipe").first.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert 0.0 <= float(readout) < 0.45, f"the slider was dragged left from 0.50; it reads {readout}"
    assert shot.stat().st_size > 10_000


TINY_TRAIN = {"model": '"edsr_baseline"', "model_kwargs": '{"num_block": 1, "num_feat": 8}', "name": '"browser"',
              "data": '"builtin:astronaut"', "patch_size": "12", "batch_size": "4", "steps": "4", "valid_every": "2",
              "valid_max_size": "48", "eval_sets": '""', "profile_size": "16", "num_workers": "0"}


def _params_index(nb_path: Path) -> int:
    """Index of the cell tagged `parameters`."""
    cells = json.loads(nb_path.read_text())["cells"]
    return next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))


def _params_source(nb_path: Path, values: dict[str, str]) -> str:
    """The parameters cell of a notebook with some values replaced (what a user types), comments kept."""
    src = "".join(next(c for c in json.loads(nb_path.read_text())["cells"]
                       if "parameters" in c["metadata"].get("tags", []))["source"])
    out = []
    for line in src.splitlines():
        name = line.split("=", 1)[0].strip()
        if name in values:
            comment = line[line.index("#"):] if "#" in line else ""
            line = f"{name} = {values[name]}  {comment}".rstrip()
        out.append(line)
    return "\n".join(out)


class Lab:
    """A JupyterLab page driven the way a user drives it: edit a cell, Run All, run on from a cell."""

    def __init__(self, page):
        self.page = page

    def open(self, base, token, nb):
        self.page.goto(f"{base}/lab/tree/{nb}?token={token}")
        # attached, not visible: notebooks restored from before sit in hidden tabs
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=60_000)
        self.page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand("
                                    "'notebook:run-all-cells')", timeout=60_000)
        # JupyterLab restores the notebooks open before; commands must go to this one
        self.page.wait_for_function("nb => { const w = window.jupyterapp.shell.currentWidget;"
                                    " return !!w && !!w.context && w.context.path.endsWith(nb); }", arg=nb,
                                    timeout=60_000)
        self.page.wait_for_function(KERNEL_IDLE, timeout=90_000)

    def set_cell(self, index, source):
        self.page.evaluate("([i, src]) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i)"
                           ".sharedModel.setSource(src)", [index, source])

    def command(self, name, cell=None):
        if cell is not None:
            self.page.evaluate("i => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", cell)
        # fire and forget: the command's promise settles only when the cells have run
        self.page.evaluate(f"() => {{ window.jupyterapp.commands.execute('{name}'); }}")

    def wait_idle(self, timeout=240_000):
        self.page.wait_for_timeout(1500)  # the execution requests reach the kernel
        self.page.wait_for_function("""() => {
          const w = window.jupyterapp.shell.currentWidget;
          const k = w.sessionContext.session.kernel;
          const busy = w.content.widgets.some(c => c.model.type === 'code' && c.model.executionCount === null
                                                  && c.node.querySelector('.jp-InputPrompt').innerText.includes('*'));
          return k.status === 'idle' && !busy;
        }""", timeout=timeout)

    def open_from_file_browser(self, parts):
        """Open a file the way a user does: double-click each folder of its path in the file browser, then it."""
        self.page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
        for name in parts:
            item = self.page.locator(".jp-DirListing-content .jp-DirListing-itemText", has_text=name).first
            item.wait_for(timeout=30_000)
            item.dblclick()
            self.page.wait_for_timeout(500)
        self.page.wait_for_function("p => { const w = window.jupyterapp.shell.currentWidget;"
                                    " return !!w && !!w.context && w.context.path.endsWith(p); }",
                                    arg="/".join(parts), timeout=60_000)

    def shot(self, name, cell=None):
        ARTIFACTS.mkdir(exist_ok=True)
        news = self.page.locator(".jp-Notification-Toast-Close, .jp-toast-button:has-text('No')")
        if news.count():  # JupyterLab asks about its news feed; not part of the picture
            news.first.click()
        if cell is not None:
            self.page.evaluate("i => window.jupyterapp.shell.currentWidget.content.widgets.at(i < 0 ? i : i)"
                               ".node.scrollIntoView({block: 'start'})", cell)
        self.page.screenshot(path=str(ARTIFACTS / name))
        return ARTIFACTS / name


def _notebooks_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", "notebooks"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True).stdout + subprocess.run(["git", "diff", "--", "notebooks"], cwd=PROJECT_ROOT,
                                                             capture_output=True, text=True).stdout


def test_train_notebook_run_all_failure_fix_and_swipe_in_jupyterlab(tmp_path):
    from playwright.sync_api import sync_playwright

    from lab import runs

    before = _notebooks_state()
    runs_root = tmp_path / "runs"
    gen = serve(tmp_path, runs_root, ["train", "ledger"])
    base, token, served = next(gen)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                lab = Lab(browser.new_page(viewport={"width": 1400, "height": 1000}))
                lab.open(base, token, "train.ipynb")
                pi = _params_index(served / "train.ipynb")
                lab.set_cell(pi, _params_source(served / "train.ipynb", TINY_TRAIN))
                lab.command("notebook:run-all-cells")
                lab.wait_idle()
                (first,) = runs.scan(runs_root)
                assert first.status == "done", first.error
                assert first.notebook.is_file()
                assert len(first.history) == 2
                lab.shot("train-1-run-all-done.png", cell=-2)  # the evaluation and the ledger row

                lab.set_cell(pi, _params_source(served / "train.ipynb", {**TINY_TRAIN, "loss": '"l1 + nope"'}))
                lab.command("notebook:run-all-cells")
                lab.wait_idle()
                second = runs.scan(runs_root)[-1]
                assert second.name != first.name
                assert second.status == "failed"
                err = second.error
                assert "nope" in err["message"]
                assert isinstance(err["cell"], int)
                assert "make_learner" in err["source"]
                lab.shot("train-2-run-all-failed.png", cell=err["cell"])

                lab.set_cell(pi, _params_source(served / "train.ipynb", TINY_TRAIN))  # the fix
                lab.command("notebook:run-cell", cell=pi)
                lab.wait_idle()
                lab.command("notebook:run-all-below", cell=err["cell"])  # on from the failed cell
                lab.wait_idle()
                assert second.status == "done", second.error
                assert second.params["loss"] == "l1", "the params that trained are the params recorded"
                assert [e["type"] for e in second.status_record["errors"]] == ["ValueError"]
                assert second.meta["param_changes"][0]["changed"]["loss"] == ["l1 + nope", "l1"]
                lab.shot("train-3-fixed-and-continued.png", cell=-2)

                lab.open(base, token, "ledger.ipynb")
                lab.command("notebook:run-all-cells")
                handle = lab.page.wait_for_selector(".lab-swipe .noUi-handle", timeout=180_000)
                img = lab.page.locator(".lab-swipe img").first
                lab.page.wait_for_function("el => el.src && el.src.startsWith('blob:') && el.naturalWidth > 0",
                                           arg=img.element_handle(), timeout=30_000)
                src = img.get_attribute("src")
                handle.scroll_into_view_if_needed()
                box = handle.bounding_box()
                lab.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                lab.page.mouse.down()
                lab.page.mouse.move(box["x"] - 80, box["y"] + box["height"] / 2, steps=8)
                lab.page.mouse.up()
                lab.page.wait_for_function("([el, old]) => el.src !== old && el.naturalWidth > 0",
                                           arg=[img.element_handle(), src], timeout=30_000)
                caption = lab.page.locator(".lab-swipe .widget-html").first.inner_text()
                lab.page.locator(".lab-swipe").first.evaluate("el => el.scrollIntoView({block: 'start'})")
                lab.shot("train-4-swipe-two-real-runs.png")
            finally:
                browser.close()
    finally:
        gen.close()
    assert f"#{second.id}" in caption, f"A and B are the two real runs: {caption}"
    assert f"#{first.id}" in caption, f"A and B are the two real runs: {caption}"
    assert _notebooks_state() == before, "notebooks/ unchanged: the browser worked on copies"


LONG_TRAIN = {**TINY_TRAIN, "steps": "200", "valid_every": "4", "name": '"stopped then resumed"'}


def _lab_cli(*args, runs_root):
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_PAPERMILL", "LAB_STATIC")}
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], env={**env, "LAB_RUNS_DIR": str(runs_root)},
                          capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)


def _cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _describe(path) -> str:
    """A notebook's last code cell and its outputs, for the record of what the test saw."""
    last = _cells(path)[-1]
    outs = []
    for o in last["outputs"]:
        text = o.get("text") or o.get("evalue") or ", ".join(o.get("data", {}))
        outs.append(f"{o['output_type']}: {''.join(text)[:200]!r}")
    return f"{path}\n  last cell: {''.join(last['source'])!r}\n  outputs: {outs}\n"


def test_stop_resume_and_run_all_again_keep_each_attempt_in_jupyterlab(tmp_path):
    """Run All, stop, `lab resume` from a shell, Run All again in the same kernel: each attempt keeps its own
    notebook (the live one numbered, the resumed one as notebook.ipynb, never rewritten by the kernel), the next
    run's notebook holds only its cells; a run's notebook opens from the file browser; the studies notebook shows
    a study where `make lab` opens it; the templates stay unchanged."""
    from playwright.sync_api import sync_playwright

    from lab import runs
    from lab.studies import load_study

    before = _notebooks_state()
    runs_root = tmp_path / "runs"
    gen = serve(tmp_path, runs_root, ["train", "studies"])
    base, token, served = next(gen)
    train = served / "train.ipynb"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                lab = Lab(browser.new_page(viewport={"width": 1400, "height": 1000}))
                lab.open(base, token, "train.ipynb")
                pi = _params_index(train)
                lab.set_cell(pi, _params_source(train, LONG_TRAIN))
                lab.command("notebook:run-all-cells")
                deadline = time.monotonic() + 300
                while not (runs.scan(runs_root) and len(runs.scan(runs_root)[0].history) >= 2):
                    assert time.monotonic() < deadline, "the run did not reach its second validation"
                    time.sleep(0.3)
                lab.command("notebook:interrupt-kernel")  # the stop button
                lab.wait_idle()
                (first,) = runs.scan(runs_root)
                assert first.status == "stopped", first.status_record
                cells = json.loads(train.read_text())["cells"]
                fit_cell = next(i for i, c in enumerate(cells) if "lab.training.fit(" in "".join(c["source"]))
                lab.shot("attempts-1-stopped.png", cell=fit_cell)

                resumed = _lab_cli("resume", str(first.id), runs_root=runs_root)
                assert resumed.returncode == 0, resumed.stderr[-3000:]
                assert first.status == "done", first.error
                resumed_nb = first.notebook.read_bytes()

                lab.set_cell(pi, _params_source(train, {**TINY_TRAIN, "name": '"after the resume"'}))
                lab.command("notebook:run-all-cells")
                lab.wait_idle()
                second = runs.scan(runs_root)[-1]
                assert second.id != first.id
                assert second.status == "done", second.error
                lab.shot("attempts-2-run-all-again-done.png", cell=-2)

                lab.open_from_file_browser(["runs", first.name, "notebook.ipynb"])
                lab.shot("attempts-3-run-notebook-opened-from-the-file-browser.png")

                lab.open(base, token, "studies.ipynb")
                lab.command("notebook:run-all-cells")
                lab.wait_idle()
                question = load_study("l1_vs_mse")["study"]["question"][:40]
                lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.at(-2).node"
                                  ".scrollIntoView({block: 'start'})")
                shown = "() => window.jupyterapp.shell.currentWidget.content.widgets.at(-2).node.innerText"
                lab.page.wait_for_function(f"q => ({shown})().includes(q)", arg=question, timeout=60_000)
                page_text = lab.page.evaluate(shown)
                lab.shot("attempts-4-studies-under-make-lab.png", cell=-2)
            finally:
                browser.close()
    finally:
        gen.close()
    ledger_rows = _lab_cli("ledger", "--columns", "id,name,title,status,error,budget,train_minutes,valid_psnr_y",
                           runs_root=runs_root).stdout
    live = first.dir / "notebook.1.ipynb"
    (ARTIFACTS / "attempts.txt").write_text(ledger_rows + "\n" + "".join(
        _describe(x) for x in (live, first.notebook, second.notebook)))

    assert first.notebook.read_bytes() == resumed_nb, "the resumed attempt's notebook is not rewritten by the kernel"
    first_live, first_resumed, second_cells = _cells(live), _cells(first.notebook), _cells(second.notebook)
    assert "stopped then resumed" in "".join(first_live[0]["source"]), "the live attempt starts at its parameters"
    assert "lab.training.fit(" in "".join(first_live[-1]["source"]), "and ends at the cell it was stopped in"
    assert [o["ename"] for o in first_live[-1]["outputs"] if o["output_type"] == "error"] == ["KeyboardInterrupt"]
    template_last = "".join(_cells(notebook_path("train"))[-1]["source"])
    assert "".join(first_resumed[-1]["source"]) == template_last, "the resumed attempt ran the template to its end"
    assert not [o for c in first_resumed for o in c["outputs"] if o["output_type"] == "error"]
    assert "after the resume" in "".join(second_cells[0]["source"]), "the next run starts at its own parameters"
    assert "".join(second_cells[-1]["source"]) == template_last, "and ends at its own last cell"
    assert not any("stopped then resumed" in "".join(c["source"]) for c in second_cells)
    assert first.meta["title"] == "stopped then resumed"
    assert first.meta["notebook_path"] == str(notebook_path("train")), "resume executes the template"
    assert question in page_text, "the studies notebook shows its study"
    assert "not found" not in page_text
    assert _notebooks_state() == before, "notebooks/ unchanged: the browser worked on copies"
