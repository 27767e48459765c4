"""A real browser: JupyterLab on localhost runs notebooks/ledger.ipynb, the swipe slider moves, the image changes.

Needs Debian's Chromium (`apt-get install -y chromium`, or $LAB_CHROMIUM) and the Python `playwright` package
(never `playwright install`: the system Chromium is driven through `executable_path`). Skipped with the reason when
either is missing, except in CI (`CI` set), where it fails instead. The screenshot lands in test-artifacts/.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lab import ledger
from lab.params import notebook_path
from lab.utils import PROJECT_ROOT

from demo_runs import make_demo_runs

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


@pytest.fixture
def jupyter(tmp_path):
    """JupyterLab on 127.0.0.1 with a token, serving a copy of the ledger notebook, runs from two demo runs."""
    _need_browser()
    runs_root = tmp_path / "runs"
    make_demo_runs(runs_root, n=2)
    served = tmp_path / "nb"
    served.mkdir()
    shutil.copy(notebook_path("ledger"), served / "ledger.ipynb")  # the committed notebook stays output-free
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_PAPERMILL", "LAB_STATIC")}
    env.update(LAB_RUNS_DIR=str(runs_root), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"))
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--allow-root", "--no-browser", "--ip", "127.0.0.1",
           "--port", str(port), f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--ServerApp.port_retries=0",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
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
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def test_swipe_slider_changes_image_in_jupyterlab(jupyter):
    from playwright.sync_api import sync_playwright

    base, token = jupyter
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
