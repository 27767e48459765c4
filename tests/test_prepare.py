"""Sub-images: BasicSR's box placement, exact crops, resumable and idempotent runs, settings that never mix."""

import numpy as np
import pytest

from lab import prepare as prep
from lab.images import read_image, write_image
from lab.utils import read_json_file


def _img(seed, h, w):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    write_image(d / "a.png", _img(0, 40, 56))  # 40x56, crop 16 step 12: y 0,12,24 ; x 0,12,24,36,40 -> 15
    write_image(d / "b.png", _img(1, 32, 32))  # y, x 0,12,16 -> 9
    write_image(d / "tiny.png", _img(2, 10, 64))  # shorter than the crop
    return d


def test_boxes_match_hand_computed_basicsr_positions():
    ys = sorted({y for y, _ in prep.subimage_boxes(1000, 1000, 480, 240)})
    assert ys == [0, 240, 480, 520]
    assert len(prep.subimage_boxes(1000, 1000, 480, 240)) == 16
    assert sorted({y for y, _ in prep.subimage_boxes(1000, 1000, 480, 240, thresh=40)}) == [0, 240, 480]
    assert prep.subimage_boxes(960, 480, 480, 240) == [(0, 0), (240, 0), (480, 0)]  # flush end: no duplicate
    assert prep.subimage_boxes(500, 700, 480, 240) == [(0, 0), (0, 220), (20, 0), (20, 220)]  # row-major
    assert prep.subimage_boxes(479, 1000, 480, 240) == []
    assert prep.subimage_boxes(10, 10, 4, 10) == [(0, 0), (0, 6), (6, 0), (6, 6)]  # step > crop leaves gaps


@pytest.mark.parametrize("kw, match", [({"crop": 0}, "crop"), ({"step": 0}, "step"), ({"thresh": -1}, "thresh"),
                                       ({"crop": 4.0}, "crop"), ({"h": -1}, "h")])
def test_boxes_validate_arguments(kw, match):
    args = {"h": 10, "w": 10, "crop": 4, "step": 2, "thresh": 0, **kw}
    with pytest.raises(ValueError, match=match):
        prep.subimage_boxes(**args)


def test_crops_equal_source_regions_and_manifest(src, tmp_path):
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="tiny.png"):
        r = prep.prepare(src, out, crop=16, step=12, progress=False)
    assert r == {"images": 3, "crops": 24, "written": 24, "skipped_small": ["tiny.png"]}
    for name in ("a", "b"):
        img = read_image(src / f"{name}.png")
        boxes = prep.subimage_boxes(*img.shape[:2], 16, 12)
        for i, (y, x) in enumerate(boxes, 1):
            assert np.array_equal(read_image(out / prep.crop_name(name, i)), img[y:y + 16, x:x + 16]), (name, i)
        assert not (out / prep.crop_name(name, len(boxes) + 1)).exists()
    assert not list(out.glob("tiny_*"))
    m = read_json_file(out / prep.MANIFEST)
    assert m["src"] == str(src.resolve())
    assert (m["crop"], m["step"], m["thresh"]) == (16, 12, 0)
    assert m["images"] == {"a.png": 15, "b.png": 9, "tiny.png": 0}


def test_rerun_writes_nothing_and_rewrites_only_what_is_missing(src, tmp_path):
    out = tmp_path / "out"
    with pytest.warns(UserWarning):
        first = prep.prepare(src, out, crop=16, step=12, progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    with pytest.warns(UserWarning):
        again = prep.prepare(src, out, crop=16, step=12, progress=False)
    assert again == {**first, "written": 0}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes
    (out / "a_s007.png").unlink()
    write_image(out / "b_s002.png", _img(3, 8, 8))  # wrong size: rewritten
    with pytest.warns(UserWarning):
        third = prep.prepare(src, out, crop=16, step=12, progress=False)
    assert third["written"] == 2
    assert third["crops"] == first["crops"]
    changed = {p.name for p in out.glob("*.png") if p.stat().st_mtime_ns != mtimes.get(p.name)}
    assert changed == {"a_s007.png", "b_s002.png"}
    assert read_image(out / "b_s002.png").shape == (16, 16, 3)


def test_other_settings_into_same_folder_raise(src, tmp_path):
    out = tmp_path / "out"
    with pytest.warns(UserWarning):
        prep.prepare(src, out, crop=16, step=12, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        prep.prepare(src, out, crop=16, step=8, progress=False)
    other = tmp_path / "src2"
    write_image(other / "c.png", _img(4, 20, 20))
    with pytest.raises(ValueError, match="other settings"):
        prep.prepare(other, out, crop=16, step=12, progress=False)
    assert not list(out.glob("c_*"))


def test_unmanaged_or_source_folder_is_refused(src, tmp_path):
    stray = tmp_path / "stray"
    write_image(stray / "x.png", _img(5, 8, 8))
    with pytest.raises(ValueError, match="no prepare.json"):
        prep.prepare(src, stray, crop=16, step=12, progress=False)
    with pytest.raises(ValueError, match="source folder"):
        prep.prepare(src, src, crop=16, step=12, progress=False)
    with pytest.raises(ValueError, match="step"):
        prep.prepare(src, tmp_path / "o", crop=16, step=0, progress=False)
    with pytest.raises(FileNotFoundError, match="nope"):
        prep.prepare(tmp_path / "nope", tmp_path / "o", progress=False)


def test_sources_sharing_a_stem_are_refused(tmp_path):
    d = tmp_path / "src"
    write_image(d / "a.png", _img(0, 20, 20))
    write_image(d / "a.bmp", _img(1, 20, 20))
    with pytest.raises(ValueError, match="share the stem"):
        prep.prepare(d, tmp_path / "out", crop=16, step=12, progress=False)
