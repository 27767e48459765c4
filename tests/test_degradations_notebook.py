"""The degradations notebook under papermill: tiny parameters, static mode, the comparison grid PNG is written."""

import json

import pytest

from lab.execute import kernel_for
from lab.params import notebook_path

pytestmark = pytest.mark.slow


def test_notebook_is_committed_clean_with_literal_parameters():
    nb = json.loads(notebook_path("degradations").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "restoration-lab"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    from lab.params import notebook_defaults

    assert notebook_defaults("degradations")["out_dir"] == ""  # no files unless asked


def test_papermill_run_writes_static_grid(tmp_path):
    import cv2
    import papermill as pm

    nb = notebook_path("degradations")
    out = tmp_path / "out"
    pm.execute_notebook(str(nb), str(tmp_path / "executed.ipynb"), kernel_name=kernel_for(nb), cwd=str(nb.parent),
                        progress_bar=False,
                        parameters={"image": "coffee", "preset": "jpeg", "overrides": {"quality": [20, 40]},
                                    "size": 64, "samples": 2, "seed": 1, "interactive": False,
                                    "out_dir": str(out)})
    png = out / "degradations.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(png))
    assert img.shape[0] > 200
    assert img.shape[1] > 200
    assert img.std() > 10
    rec = json.loads((out / "degradation_samples.json").read_text())
    assert rec["config"]["preset"] == "jpeg"
    assert len(rec["params"]) == 2
    qualities = [p["stages"][0]["steps"]["jpeg"]["quality"] for p in rec["params"]]
    assert all(20 <= q <= 40 for q in qualities)  # the overrides reached the preset
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    shown = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) >= 2  # the draws and the static grid were displayed
