"""Plots produce image files; the swipe composition is right pixel for pixel; widgets build and react; the ledger
notebook runs under papermill with static images."""

import json

import numpy as np
import pytest
from demo_runs import make_demo_runs

from lab import explorer, ledger, plots, runs, widgets
from lab.degrade import build

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_demo_runs(root, n=3)
    return ledger.load(root)


def _png_size(path):
    import cv2

    data = path.read_bytes()
    assert data[:8] == PNG
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return img.shape[:2], img


def test_plots_write_files(demo, tmp_path):
    figs = {
        "curves": plots.curves(demo),
        "bar": plots.bar_by_param(demo, "valid_psnr_y", "loss"),
        "pareto": plots.pareto(demo, "valid_psnr_y", "gflops"),
        "grid": plots.compare_grid(demo, "chelsea", "valid", box=(100, 150, 64, 64)),
    }
    for name, fig in figs.items():
        (h, w), img = _png_size(plots.save(fig, tmp_path / f"{name}.png"))
        assert h > 100, f"{name} is not blank"
        assert w > 100, f"{name} is not blank"
        assert img.std() > 5, f"{name} is not blank"
    grid_axes = [ax for ax in figs["grid"].axes if ax.images]
    assert len(grid_axes) >= 3
    assert all(ax.images[0].get_array().shape[:2] == (64, 64) for ax in grid_axes)
    lines = figs["curves"].axes[1].get_lines()
    assert len(lines) == 3, "one PSNR curve per run"
    assert all(len(line.get_xdata()) == 3 for line in lines), "one PSNR curve per run"


def test_plot_errors_name_the_choices(demo):
    with pytest.raises(KeyError, match="valid_psnr_y"):
        plots.bar_by_param(demo, "nope", "loss")
    with pytest.raises(KeyError, match="cost.gflops"):
        plots.pareto(demo, "valid_psnr_y", "watts")
    with pytest.raises(ValueError, match="no runs"):
        plots.curves(demo.iloc[:0])


def test_pareto_front_is_the_non_dominated_set():
    rng = np.random.default_rng(0)
    cost, q = rng.uniform(0.1, 10, 200), rng.normal(30, 1, 200)
    front = set(plots.pareto_front(cost, q).tolist())
    for i in range(200):
        dominated = np.any((cost <= cost[i]) & (q >= q[i]) & ((cost < cost[i]) | (q > q[i])))
        assert (i in front) == (not dominated)


def test_swipe_and_zoom_compose_pixels():
    a = np.full((40, 60, 3), 10, np.uint8)
    b = np.full((41, 60, 3), 200, np.uint8)  # a pixel taller: cropped to the common size
    assert (widgets.swipe(a, b, 0.0) == 200).all()
    assert widgets.swipe(a, b, 0.0).shape == (40, 60, 3)
    assert (widgets.swipe(a, b, 1.0) == 10).all()
    half = widgets.swipe(a, b, 0.5, line=0)
    assert (half[:, :30] == 10).all()
    assert (half[:, 30:] == 200).all()
    a[5:9, 5:9] = 77
    out = widgets.compose(a, b, 0.5, zoom=(7 / 40, 7 / 60, 4), factor=3)
    assert out.shape[1] == 60, "zoom strip below the view"
    assert out.shape[0] > 40, "zoom strip below the view"
    strip = out[44:]
    assert (strip == 77).sum() >= 3 * (3 * 4 - 4) ** 2, "the 4x4 box of A magnified 3x (inside its frame)"
    with pytest.raises(ValueError, match="outside"):
        widgets.swipe(a, b, 1.5)


def test_swipe_widget_reacts(monkeypatch):
    monkeypatch.delenv("LAB_PAPERMILL", raising=False)
    rng = np.random.default_rng(1)
    imgs = {k: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for k in ("run 1", "run 2", "HR")}
    w = widgets.SwipeCompare(imgs, "run 1", "HR", pos=0.2)
    first = w.image.value
    assert first[:8] == PNG
    assert w.a_pick.options == ("run 1", "run 2", "HR")
    w.slider.value = 0.8
    assert w.image.value != first
    moved = w.image.value
    w.b_pick.value = "run 2"
    assert w.image.value != moved
    assert "run 2" in w.caption.value
    w.zoom_on.value = False
    assert w.render().shape == (48, 64, 3)
    with pytest.raises(KeyError, match="among the images"):
        w.set_images(imgs, a="nope")
    with pytest.raises(ValueError, match="at least two"):
        widgets.SwipeCompare({"only": imgs["HR"]})


def test_run_picker_compare_and_scrubber_build(demo):
    runs.add_note(demo.loc[1, "path"], tags=["keep"])
    df = ledger.load(demo.attrs["root"])
    picks = []
    p = widgets.RunPicker(df, on_change=lambda a, b: picks.append((a, b)))
    assert p.value == (3, 2)
    assert len(p.a.options) == 3
    p.tag.value = "keep"
    assert [v for _, v in p.a.options] == [2]
    assert p.value[0] == 2
    assert picks
    p.status.value = "failed"
    assert p.a.options == ()
    assert p.value == (None, None)
    c = widgets.CompareRuns(df)
    assert list(c.swipe.images) == ["#3 demo imdn_rtc", "#2 demo edsr_baseline"]
    assert c.swipe.a_pick.layout.display == "none", "one A/B picker: the run picker's"
    before = c.swipe.image.value
    c.picker.b.value = 1
    assert "#1 demo srcnn" in c.swipe.images
    assert c.swipe.image.value != before
    c.picker.b.value = "ref:hr"
    assert list(c.swipe.images) == ["#3 demo imdn_rtc", "HR"], "a run against its ground truth"
    assert widgets.scrubbable(df) == df.loc[2, "path"], "the newest run with more than one epoch"
    s = widgets.EpochScrubber(df.loc[0, "path"])
    last = s.image.value
    s.slider.value = 0
    assert s.image.value != last
    assert s.label.value == "epoch_000.png"


def test_show_is_static_under_papermill(demo, monkeypatch):
    from IPython.display import Image

    monkeypatch.setenv("LAB_PAPERMILL", "1")
    c = widgets.CompareRuns(demo)
    shown = widgets.show(c)
    assert isinstance(shown, Image)
    assert shown.data[:8] == PNG
    monkeypatch.setenv("LAB_PAPERMILL", "0")
    assert widgets.show(c) is c.widget


@pytest.mark.slow
def test_ledger_notebook_under_papermill(demo, tmp_path, monkeypatch):
    import papermill as pm

    from lab.execute import kernel_for
    from lab.params import notebook_path

    nb = notebook_path("ledger")
    out = tmp_path / "out.ipynb"
    report = tmp_path / "report.html"
    monkeypatch.setenv("LAB_PAPERMILL", "1")  # what lab's runners set for their kernels
    pm.execute_notebook(str(nb), str(out), parameters={"runs_dir": demo.attrs["root"], "export": str(report)},
                        kernel_name=kernel_for(nb), cwd=str(nb.parent), progress_bar=False)
    cells = json.loads(out.read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 6, "curves, bars, Pareto, grid, static swipe, static samples"
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert report.read_text().count("data:image/png;base64,") >= 2


@pytest.mark.parametrize("name", ["ledger", "evaluate"])
def test_notebooks_committed_clean(name):
    from lab.params import notebook_defaults, notebook_path, parameters_cell

    path = notebook_path(name)
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "restoration-lab"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "committed without outputs"
    lines = [ln for ln in parameters_cell(path).splitlines() if ln.strip()]
    assert lines, "one comment per parameter"
    assert all("#" in ln for ln in lines), "one comment per parameter"
    assert len(notebook_defaults(name)) == len(lines), "literals only, one per line"


def test_explorer_static_grid_and_sliders():
    import skimage.data as skd

    ex = explorer.DegradationExplorer(skd.astronaut()[::8, ::8].copy(), scale=2, pipeline=build("jpeg"))
    g = ex.static_grid(samples=2)
    assert g.dtype == np.uint8
    assert g.ndim == 3
    assert g.std() > 10
    before = ex.widget.children[1].value
    ex.sliders["noise_255"].value = 40
    assert ex.image.value != before
    assert ex.settings["noise_255"] == 40
