"""The infer notebook under papermill: tiny model, a folder of LR pictures, outputs written and a run recorded."""

import json

import numpy as np
import pytest
import torch

from lab.execute import kernel_for
from lab.images import write_image
from lab.models import create, save_checkpoint
from lab.params import notebook_path
from lab.runs import scan

pytestmark = pytest.mark.slow


def test_notebook_is_committed_clean_with_a_parameters_cell():
    nb = json.loads(notebook_path("infer").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"


def test_papermill_run_infers_a_folder_and_records_a_run(tmp_path):
    import papermill as pm

    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "lr" / f"p{i}.png", rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
    torch.manual_seed(0)
    ck = save_checkpoint(tmp_path / "m.pth", create("edsr_baseline", scale=2, num_feat=8, num_block=1))
    nb = notebook_path("infer")
    pm.execute_notebook(str(nb), str(tmp_path / "executed.ipynb"), kernel_name=kernel_for(nb), cwd=str(nb.parent),
                        progress_bar=False,
                        parameters={"model": str(ck), "inputs": str(tmp_path / "lr"), "out": str(tmp_path / "sr"),
                                    "size": "48x32", "runs_dir": str(tmp_path / "runs")})
    assert sorted(p.name for p in (tmp_path / "sr").glob("*.png")) == ["p0.png", "p1.png"]
    (run,) = scan(tmp_path / "runs")
    assert run.params["kind"] == "infer"
    assert run.status == "done"
