"""Decoded-image cache: byte-identical entries, memmap reads without decoding, keys that follow file changes,
header-only shapes, idempotent builds, clear errors."""

import os

import numpy as np
import pytest

from lab import imcache
from lab.images import read_image, write_image


def _img(seed=0, h=40, w=56):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _no_decode(*args, **kwargs):
    raise AssertionError("read_image was called: the cache should have answered")


@pytest.fixture
def png(tmp_path):
    return write_image(tmp_path / "a.png", _img())


def test_cache_key_and_file(png, tmp_path):
    key = imcache.cache_key(png)
    assert len(key) >= 16
    assert int(key, 16) >= 0
    assert imcache.cache_key(png) == key
    assert imcache.cache_file(png, tmp_path / "c") == tmp_path / "c" / key[:2] / f"{key}.npy"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        imcache.cache_key(tmp_path / "missing.png")


def test_load_caches_identical_array_then_memmaps_without_decoding(png, tmp_path, monkeypatch):
    root = tmp_path / "cache"
    first = imcache.load(png, root)
    assert first.dtype == np.uint8
    assert first.shape == (40, 56, 3)
    assert np.array_equal(first, read_image(png))
    assert np.array_equal(first, _img())
    assert imcache.cache_file(png, root).is_file()
    monkeypatch.setattr(imcache, "read_image", _no_decode)
    second = imcache.load(png, root)
    assert isinstance(second, np.memmap)
    assert not second.flags.writeable
    assert second.tobytes() == first.tobytes()


def test_load_without_build_writes_nothing(png, tmp_path):
    root = tmp_path / "cache"
    assert np.array_equal(imcache.load(png, root, build=False), _img())
    assert not imcache.cache_file(png, root).exists()


def test_changed_file_gets_new_key_and_new_pixels(png, tmp_path):
    root = tmp_path / "cache"
    old_key = imcache.cache_key(png)
    imcache.load(png, root)
    write_image(png, _img(seed=1))
    st = os.stat(png)
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert imcache.cache_key(png) != old_key
    assert np.array_equal(imcache.load(png, root), _img(seed=1))


def test_read_shape_without_decoding(png, tmp_path, monkeypatch):
    root = tmp_path / "cache"
    gray = tmp_path / "g.png"
    write_image(gray, _img(h=24, w=18)[:, :, :1])
    monkeypatch.setattr(imcache, "read_image", _no_decode)
    assert imcache.read_shape(png, root) == (40, 56, 3)  # uncached: file header
    assert imcache.read_shape(gray, root) == (24, 18, 3)  # RGB after read_image's conversion
    monkeypatch.undo()
    imcache.load(png, root)
    monkeypatch.setattr(imcache, "read_image", _no_decode)
    monkeypatch.setattr(imcache.Image, "open", _no_decode)
    assert imcache.read_shape(png, root) == (40, 56, 3)  # cached: .npy header


def test_build_is_idempotent_and_counts_bytes(tmp_path):
    src = tmp_path / "imgs"
    for i in range(3):
        write_image(src / f"{i}.png", _img(seed=i))
    root = tmp_path / "cache"
    r1 = imcache.build(src, root, progress=False)
    assert r1["cached"] == 3
    assert r1["skipped"] == 0
    assert r1["bytes"] == sum(imcache.cache_file(p, root).stat().st_size for p in src.iterdir())
    assert r1["bytes"] >= 3 * 40 * 56 * 3
    r2 = imcache.build(sorted(src.iterdir()), root, progress=False)
    assert r2 == {"cached": 0, "skipped": 3, "bytes": r1["bytes"]}


def test_corrupt_image_raises_naming_it(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    root = tmp_path / "cache"
    with pytest.raises(ValueError, match="bad.png"):
        imcache.build([bad], root, progress=False)
    with pytest.raises(ValueError, match="bad.png"):
        imcache.read_shape(bad, root)
    assert not list(root.rglob("*.npy"))


def test_non_hwc_uint8_entries_are_never_written(tmp_path):
    with pytest.raises(ValueError, match="HWC RGB uint8"):
        imcache._write_entry(tmp_path / "x.npy", np.zeros((4, 4), np.float32))
    assert not (tmp_path / "x.npy").exists()


def test_env_var_is_honoured_and_clear_removes_entries(png, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "envcache"))
    assert imcache.cache_root() == tmp_path / "envcache"
    assert imcache.cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    imcache.load(png)
    assert imcache.cache_file(png).is_relative_to(tmp_path / "envcache")
    assert imcache.cache_file(png).is_file()
    keep = tmp_path / "envcache" / "notes.npy"
    keep.write_bytes(b"x")
    assert imcache.clear() == 1
    assert not imcache.cache_file(png).exists()
    assert keep.exists()
    assert imcache.clear(tmp_path / "nowhere") == 0


def test_default_cache_dir_is_git_ignored_data(monkeypatch):
    monkeypatch.delenv("LAB_CACHE_DIR", raising=False)
    assert imcache.cache_root() == imcache.DEFAULT_CACHE_DIR
    assert imcache.DEFAULT_CACHE_DIR.parts[-2:] == ("data", "cache")


def test_unreadable_entry_raises_naming_it(png, tmp_path):
    root = tmp_path / "cache"
    imcache.load(png, root)
    imcache.cache_file(png, root).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="unreadable"):
        imcache.load(png, root)
