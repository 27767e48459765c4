"""Sources of any size: lazy reads, the disk cache behind them, filters, weighted mixes and the data spec syntax."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lab import sources
from lab.images import read_image, write_image
from lab.sources import ImagePair, ImageSource, SourceMix


def _photos(folder, n=3, size=(40, 56), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


def test_folder_source_lists_sizes_from_headers_and_reads_lazily(tmp_path, monkeypatch):
    folder = _photos(tmp_path / "hr")
    calls = []
    real = sources.read_image
    monkeypatch.setattr(sources, "read_image", lambda p: calls.append(p) or real(p))
    src = sources.open_source(str(folder), 2)
    assert len(src) == 3, "nothing decoded to list a folder"
    assert src.shape(1) == (40, 56), "nothing decoded to list a folder"
    assert not calls, "nothing decoded to list a folder"
    assert np.array_equal(src.hr(1), read_image(folder / "img1.png"))
    assert len(calls) == 1
    src.hr(1)
    assert len(calls) == 1, "the in-process cache serves the second read"


def test_lru_stays_within_its_budget():
    lru = sources._LRU(3 * 1000)
    for k in range(10):
        lru.get(k, lambda: np.zeros(1000, np.uint8))
    assert lru.used <= 3000
    assert list(lru.items) == [7, 8, 9]


def test_disk_cache_gives_the_same_pixels_as_decoding(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "cache"))
    folder = _photos(tmp_path / "hr")
    plain = sources.open_source(str(folder), 2)
    cached = sources.open_source(str(folder), 2, disk_cache=True)
    for i in range(3):
        assert np.array_equal(np.asarray(cached.hr(i)), plain.hr(i))
    assert isinstance(cached.hr(0), np.memmap), "disk-cached reads are memory maps"


def test_filters_skip_small_gray_and_listed_files_and_warn_on_non_images(tmp_path):
    folder = _photos(tmp_path / "hr", n=2)
    write_image(folder / "small.png", np.zeros((8, 8, 3), np.uint8))
    write_image(folder / "gray.png", np.zeros((40, 40), np.uint8)[:, :, None])
    (folder / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        src = sources.open_source(str(folder), 2, filters={"min_size": 16, "gray": "skip", "skip": ["img1"]})
    assert src.names() == ["img0"]
    assert "gray" in sources.open_source(str(folder), 2, filters={"min_size": 16}).names(), "gray: convert by default"
    with pytest.raises(ValueError, match="unknown data filter"):
        sources.check_filters({"minsize": 3})
    with pytest.raises(FileNotFoundError, match="no usable images"):
        sources.open_source(str(folder), 2, filters={"min_size": 10_000})


def test_paired_folders_must_agree_with_the_scale(tmp_path):
    hr = _photos(tmp_path / "hr", n=1, size=(40, 56))
    (tmp_path / "lr").mkdir()
    write_image(tmp_path / "lr" / "img0.png", np.zeros((20, 28, 3), np.uint8))
    src = sources.open_source(str(hr), 2, str(tmp_path / "lr"))
    assert src.paired
    assert src.lr(0).shape == (20, 28, 3)
    with pytest.raises(ValueError, match="scale"):
        sources.open_source(str(hr), 3, str(tmp_path / "lr"))


@pytest.mark.parametrize("spec, expected", [
    ("builtin", [("builtin", None)]),
    ("builtin:astronaut,coffee", [("builtin:astronaut,coffee", None)]),
    ("div2k_hr:0.6, flickr2k:0.3, photos/:0.1", [("div2k_hr", 0.6), ("flickr2k", 0.3), ("photos/", 0.1)]),
    ("builtin:astronaut,coffee:0.3, data/x/:0.7", [("builtin:astronaut,coffee", 0.3), ("data/x/", 0.7)]),
])
def test_data_spec_syntax(spec, expected):
    assert sources.parse_data_spec(spec) == expected


@pytest.mark.parametrize("spec, match", [("a:0.5, b", "every source or to none"), ("a:0, b:1", "positive"),
                                         ("", "non-empty")])
def test_bad_data_specs_say_what_to_write(spec, match):
    with pytest.raises(ValueError, match=match):
        sources.parse_data_spec(spec)


def test_weighted_mix_draws_sources_in_proportion():
    red = ImageSource.from_pairs([ImagePair("r", np.full((8, 8, 3), 200, np.uint8))], "red")
    blue = ImageSource.from_pairs([ImagePair(f"b{i}", np.full((8, 8, 3), 10, np.uint8)) for i in range(5)], "blue")
    mix = SourceMix([red, blue], [0.7, 0.3])
    draws = [mix.draw(np.random.default_rng([0, 0, i]), i)[0].name for i in range(4000)]
    share = draws.count("red") / len(draws)
    assert abs(share - 0.7) < 0.03, share
    pool = SourceMix([red, blue])
    assert [pool.draw(None, i)[1] for i in range(7)] == [0, 0, 1, 2, 3, 4, 0], "an unweighted pool cycles its images"


def test_image_seed_is_fixed_per_image_and_set():
    assert sources.image_seed("baby", "Set5") == sources.image_seed("baby", "Set5")
    assert sources.image_seed("baby", "Set5") != sources.image_seed("bird", "Set5")
    assert sources.image_seed("baby", "Set5") != sources.image_seed("baby", "Set5@blur_bicubic")


def test_relative_folders_mean_the_project_root_wherever_the_kernel_runs(tmp_path, monkeypatch):
    """Notebooks run in notebooks/ (papermill) or work/ (JupyterLab), while `lab data prepare ... data/x` writes
    relative to the project root: `-p data data/x` must find the same folder from both."""
    from lab.utils import PROJECT_ROOT, user_path

    folder = PROJECT_ROOT / "data" / f"test-user-path-{tmp_path.name}"
    folder.mkdir(parents=True)
    try:
        write_image(folder / "a.png", np.full((40, 40, 3), 128, np.uint8))
        rel = folder.relative_to(PROJECT_ROOT)
        monkeypatch.chdir(PROJECT_ROOT / "notebooks")
        assert not rel.exists()
        assert user_path(rel) == folder
        assert sources.open_source(str(rel), 2).names() == ["a"]
        monkeypatch.chdir(tmp_path)
        (tmp_path / rel).mkdir(parents=True)  # a folder of that name here wins: the path as given first
        assert user_path(rel) == rel
    finally:
        shutil.rmtree(folder)


def test_builtin_all_adds_the_gray_photos_but_never_the_validation_photo():
    names = sources.open_source("builtin:all", 2).names()
    assert set(sources.BUILTIN_TRAIN) | set(sources.BUILTIN_GRAY) == set(names)
    assert sources.BUILTIN_VALID[0] not in names
    assert sources.open_source("builtin:camera", 2).pairs()[0].hr.shape == (512, 512, 3), "gray: 3 equal channels"
    with pytest.raises(KeyError, match="'builtin:all'"):
        sources.open_source("builtin:cameraman", 2)


def _file_names(src):
    return {src.file(i) for i in range(len(src))}


def test_held_out_split_never_overlaps_training_and_is_the_same_on_rerun(tmp_path):
    folder = _photos(tmp_path / "hr", n=20, size=(8, 8))
    write_image(folder / "tiny.png", np.zeros((4, 4, 3), np.uint8))  # filtered out before the split
    filters = {"min_size": 8}
    train, held, record = sources.hold_out(sources.open_sources(str(folder), 2, filters=filters), 0.2)
    train_files = {f for src in train.sources for f in _file_names(src)}
    assert len(held) == 4, "20% of the 20 images left by the filters"
    assert not train_files & _file_names(held), "a held-out image is never trained on"
    assert len(train_files) + len(held) == 20
    assert "tiny.png" not in train_files | _file_names(held)
    assert [im["file"] for im in record["images"]] == sorted(_file_names(held))
    assert record["train_images"] == 16
    again = sources.hold_out(sources.open_sources(str(folder), 2, filters=filters), 0.2)[2]
    assert again == record, "the same files give the same split"


def test_a_fingerprint_follows_the_files_and_data_changes_names_what_moved(tmp_path):
    import os

    folder = _photos(tmp_path / "hr", n=4)
    spec = str(folder)
    mix = sources.open_sources(spec, 2)
    recorded = [{**d, **f} for d, f in zip(mix.describe(), sources.fingerprints(mix))]
    assert recorded[0]["files"] == 4
    assert sources.data_changes(recorded, spec, 2) == [], "the same files: nothing to say"
    os.utime(folder / "img0.png", (1, 1))
    assert sources.data_changes(recorded, spec, 2) == [], "a copy that keeps names and bytes is the same data"
    write_image(folder / "img4.png", np.zeros((40, 56, 3), np.uint8))
    assert sources.data_changes(recorded, spec, 2) == [f"training data {spec!r} changed since (4 image files then, "
                                                      "5 now)"]
    (folder / "img4.png").unlink()
    write_image(folder / "img0.png", np.full((40, 56, 3), 7, np.uint8))  # rewritten: same name, other bytes
    assert "names or byte sizes differ" in sources.data_changes(recorded, spec, 2)[0]
    assert sources.data_changes(recorded, spec, 2, filters={"skip": ["img0.png"]}) != []
    shutil.rmtree(folder)
    assert "cannot be read now" in sources.data_changes(recorded, spec, 2)[0]
    builtin = sources.open_source("builtin:coffee,brick", 2)
    assert builtin.fingerprint() == sources.open_source("builtin:coffee,brick", 2).fingerprint()
    assert builtin.fingerprint() != sources.open_source("builtin:coffee", 2).fingerprint()
    pairs = [ImagePair("a", np.zeros((8, 8, 3), np.uint8))]
    other = [ImagePair("a", np.ones((8, 8, 3), np.uint8))]
    assert ImageSource.from_pairs(pairs).fingerprint() != ImageSource.from_pairs(other).fingerprint()


def test_split_does_not_depend_on_listing_order_and_other_shares_differ():
    pairs = [ImagePair(f"im{i}", np.full((8, 8, 3), i, np.uint8)) for i in range(30)]
    a = sources.hold_out(SourceMix([ImageSource.from_pairs(pairs)]), 0.1)[1]
    b = sources.hold_out(SourceMix([ImageSource.from_pairs(pairs[::-1])]), 0.1)[1]
    assert sorted(a.names()) == sorted(b.names())
    assert len(sources.hold_out(SourceMix([ImageSource.from_pairs(pairs)]), 0.5)[1]) == 15


@pytest.mark.parametrize("spec", ["split:1.5", "split:x", "split:0", "split:", "split:nan"])
def test_a_bad_split_share_names_the_accepted_form(spec):
    with pytest.raises(ValueError, match=r"'split:<share>' with 0 < share < 1"):
        sources.parse_split(spec)


def test_a_split_that_leaves_nothing_to_train_on_is_refused():
    pairs = [ImagePair(f"im{i}", np.zeros((8, 8, 3), np.uint8)) for i in range(2)]
    with pytest.raises(ValueError, match="leaving none to train on"):
        sources.hold_out(SourceMix([ImageSource.from_pairs(pairs)]), 0.9)
