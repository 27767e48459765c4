"""Video: OpenCV round trip (frame count, rate, size), every N-th frame, near-duplicate drop, `lab data frames`,
the flicker measure, a corrupt video as one line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lab.cli import main
from lab.video import flicker, read_frames, video_info, write_video


def _frames(n=6, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]


def test_write_and_read_back_keeps_count_rate_and_size(tmp_path):
    frames = _frames(6)
    path = write_video(list(enumerate(frames)), tmp_path / "v.avi", fps=24.0, progress=False)
    info = video_info(path)
    assert (info.frames, info.width, info.height) == (6, 48, 32)
    assert info.fps == pytest.approx(24.0)
    got = list(read_frames(path))
    assert [i for i, _ in got] == list(range(6))
    err = [float(np.abs(got[2][1].astype(int) - f.astype(int)).mean()) for f in frames]
    assert int(np.argmin(err)) == 2, "MJPG is lossy, but frame 2 reads back as frame 2"
    assert [i for i, _ in read_frames(path, every=2)] == [0, 2, 4]


def test_dropped_frames_keep_the_timing_when_written_back(tmp_path):
    frames = _frames(3)
    path = write_video([(0, frames[0]), (3, frames[1]), (5, frames[2])], tmp_path / "v.avi", fps=10.0,
                       total=8, progress=False)
    assert video_info(path).frames == 8


def test_dedup_drops_held_drawings(tmp_path):
    drawings = _frames(3)
    held = [d for d in drawings for _ in range(3)]  # each drawing held 3 frames, as anime does
    path = write_video(list(enumerate(held)), tmp_path / "held.avi", fps=24.0, progress=False)
    assert len(list(read_frames(path))) == 9
    assert [i for i, _ in read_frames(path, dedup=True)] == [0, 3, 6]


def test_data_frames_makes_a_training_folder(tmp_path, capsys):
    held = [d for d in _frames(2) for _ in range(2)]
    path = write_video(list(enumerate(held)), tmp_path / "ep.avi", fps=24.0, progress=False)
    assert main(["data", "frames", str(path), str(tmp_path / "train"), "--dedup", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "train").glob("*.png")) == ["ep_000000.png", "ep_000002.png"]
    assert "2 of 4 frames kept" in capsys.readouterr().out


def test_flicker_is_higher_for_a_flickering_output_than_a_steady_one():
    inputs = _frames(6)
    steady = [cv2.resize(f, (96, 64), interpolation=cv2.INTER_CUBIC) for f in inputs]
    gains = [1.0, 0.8, 1.0, 0.8, 1.0, 0.8]  # brightness pumping, as an unstable autocontrast does
    flick = [np.clip(s.astype(float) * g, 0, 255).astype(np.uint8) for s, g in zip(steady, gains)]
    stretched = [np.clip((s.astype(float) - 128) * 1.5 + 128, 0, 255).astype(np.uint8) for s in steady]
    a, b, c = flicker(inputs, steady), flicker(inputs, flick), flicker(inputs, stretched)
    assert b["flicker"] > a["flicker"] + 5
    assert a["flicker"] < 1
    assert c["flicker"] < 1, "the same contrast stretch in every frame is no flicker"
    with pytest.raises(ValueError, match="as many input as output"):
        flicker(inputs, steady[:3])


def test_a_corrupt_video_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="could not be opened|no decodable frame"):
        video_info(bad)
    assert main(["data", "frames", str(bad), str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.mp4" in err
