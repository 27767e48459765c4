"""`lab infer`: LR-only folders to a stated size, resumable, recorded as a run; videos; output sizes; bad inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lab.cli import main
from lab.images import read_image, write_image
from lab.inference import KIND, LABEL, collect_inputs, run_inference
from lab.models import create, save_checkpoint
from lab.runs import find, scan
from lab.sizing import check_not_smaller, fit, parse_size


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create("edsr_baseline", scale=2, num_feat=8, num_block=1)
    return save_checkpoint(tmp_path / "tiny.pth", model)


@pytest.fixture
def lr_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "lr"
    for i, (h, w) in enumerate([(24, 40), (30, 30)]):
        write_image(folder / f"pic{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return folder


def test_infer_writes_one_output_per_input_at_the_size_skips_existing_and_records_a_run(tmp_path, checkpoint,
                                                                                       lr_folder, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["infer", str(checkpoint), str(lr_folder), "--out", str(out), "--size", "96x64", "--runs", str(runs),
            "--no-progress"]
    assert main(argv) == 0
    outs = sorted(out.glob("*.png"))
    assert [p.name for p in outs] == ["pic0.png", "pic1.png"]
    assert {read_image(p).shape for p in outs} == {(64, 96, 3)}
    run = scan(runs)[0]
    assert run.params["kind"] == KIND
    assert run.params["model"] == "edsr_baseline"
    assert run.params["fit"] == "pad"
    assert run.status == "done"
    assert run.metrics["written"] == 2
    table = run.eval_table(LABEL)
    assert {r["output"] for r in table} == {str(p) for p in outs}
    assert all(r["hf_vs_bicubic"] > 0 for r in table)
    stamp = outs[0].stat().st_mtime_ns
    assert main(argv) == 0
    second = scan(runs)[-1]
    assert second.metrics["skipped"] == 2
    assert second.metrics["written"] == 0
    assert outs[0].stat().st_mtime_ns == stamp, "an existing output is not rewritten"
    assert "2 skipped" in capsys.readouterr().out


def test_infer_at_the_models_scale_tiled_equals_whole(tmp_path, checkpoint, lr_folder):
    whole = run_inference(str(checkpoint), [lr_folder], tmp_path / "whole", runs_root=tmp_path / "runs",
                          progress=False)
    tiled = run_inference(str(checkpoint), [lr_folder], tmp_path / "tiled", tile=16, tile_overlap=4,
                          runs_root=tmp_path / "runs", progress=False)
    for name in ("pic0.png", "pic1.png"):
        a, b = read_image(tmp_path / "whole" / name), read_image(tmp_path / "tiled" / name)
        assert a.shape == (read_image(lr_folder / name).shape[0] * 2, read_image(lr_folder / name).shape[1] * 2, 3)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert whole.params["tile"] == 0
    assert tiled.params["tile_overlap"] == 4


def test_infer_from_a_run_id(tmp_path, checkpoint, lr_folder):
    from lab.runs import create as create_run

    src = create_run({"model": "edsr_baseline"}, root=tmp_path / "runs")
    src.save_checkpoint(torch.load(checkpoint, weights_only=True), "best")
    run = run_inference(str(src.id), [lr_folder / "pic0.png"], tmp_path / "o", runs_root=tmp_path / "runs",
                        progress=False)
    assert run.params["source_run"] == src.name
    assert (tmp_path / "o" / "pic0.png").is_file()


def test_fit_modes_keep_the_aspect():
    x = torch.rand(1, 3, 20, 40)
    assert fit(x, (60, 60), "pad").shape == (1, 3, 60, 60)
    padded = fit(torch.ones(1, 3, 20, 40), (60, 60), "pad")
    assert float(padded[..., 0, :].abs().max()) == 0, "letterbox bars are black"
    cropped = fit(torch.ones(1, 3, 20, 40), (60, 60), "crop")
    assert float(cropped.min()) > 0.99, "crop fills the frame"
    assert fit(x, (100, 30), "stretch").shape == (1, 3, 30, 100)
    assert parse_size("1920x1080") == (1920, 1080)


@pytest.mark.parametrize("argv_tail, expected", [
    (["--size", "10x10"], "is smaller than the input"),
    (["--size", "big"], "expected WIDTHxHEIGHT"),
    (["--precision", "fp8"], "unknown precision 'fp8'"),
    (["--post", "sharpen"], "unknown post-processing op 'sharpen'"),
])
def test_bad_settings_are_one_line_and_record_nothing(tmp_path, checkpoint, lr_folder, capsys, argv_tail, expected):
    argv = ["infer", str(checkpoint), str(lr_folder), "--out", str(tmp_path / "o"), "--runs", str(tmp_path / "r"),
            "--no-progress", *argv_tail]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert len(err.splitlines()) == 1
    assert scan(tmp_path / "r") == []


def test_unknown_model_and_missing_input_are_one_line(tmp_path, lr_folder, capsys):
    assert main(["infer", "nosuchmodel", str(lr_folder), "--out", str(tmp_path / "o"), "--runs",
                 str(tmp_path / "r")]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_inputs([tmp_path / "missing"])
    with pytest.raises(ValueError, match="smaller than the input"):
        check_not_smaller((270, 480), (320, 180), "pad")


def _video(path, frames, fps=12.0):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def test_infer_on_a_video_writes_frames_and_the_video_back(tmp_path, checkpoint):
    rng = np.random.default_rng(1)
    base = cv2.resize(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8), (48, 32), interpolation=cv2.INTER_CUBIC)
    frames = [np.roll(base, i, axis=1) for i in range(5)]
    src = _video(tmp_path / "clip.avi", frames)
    run = run_inference(str(checkpoint), [src], tmp_path / "o", video_ext=".avi", runs_root=tmp_path / "runs",
                        progress=False)
    assert len(list((tmp_path / "o" / "clip").glob("*.png"))) == 5
    cap = cv2.VideoCapture(str(tmp_path / "o" / "clip.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (96, 64)
    cap.release()
    assert run.metrics["flicker"] >= 0
    assert "audio is not carried" in run.metrics["videos"][0]["audio"]
    assert find(run.id, tmp_path / "runs").status == "done"
