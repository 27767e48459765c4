"""Decoded-image cache on disk: each image file is decoded once to a `.npy` entry, then read as a read-only memory
map, so a dataset of thousands of 2K PNGs costs one decode per image instead of one per epoch (the IMDN/BasicSR
practice of caching decoded images).

Layout of the cache root (`$LAB_CACHE_DIR`, else `<repo>/data/cache`):
  <key[:2]>/<key>.npy      the HWC uint8 RGB array `lab.images.read_image` returns for one file
The key hashes the file's resolved path, size and mtime_ns, so an edited file gets a new entry (the old one is
orphaned until `clear`). Entries are written through a temp file + rename: a reader never sees half an entry, and two
workers building the same entry race harmlessly.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
from fastprogress.fastprogress import progress_bar
from numpy.lib import format as npy_format
from PIL import Image, UnidentifiedImageError

from lab.images import list_images, read_image
from lab.utils import PROJECT_ROOT, atomic_write_bytes
from lab.vocab import ENV_CACHE_DIR

DEFAULT_CACHE_DIR = PROJECT_ROOT / "data" / "cache"
_KEY_VERSION = "imcache-v1:rgb-uint8"  # part of every key: change it when read_image's decoding changes
_ENTRY_RE = re.compile(r"^[0-9a-f]{32}\.npy$")


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root: `root`, else `$LAB_CACHE_DIR`, else `<repo>/data/cache` (git-ignored)."""
    return Path(root or os.environ.get(ENV_CACHE_DIR) or DEFAULT_CACHE_DIR)


def cache_key(path: str | os.PathLike) -> str:
    """32-hex blake2b digest of the file's resolved path, size and mtime_ns: any change to the file changes the key."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {str(path)!r} does not exist; check the path") from None
    ident = f"{_KEY_VERSION}\0{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.blake2b(ident.encode("utf-8"), digest_size=16).hexdigest()


def cache_file(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Where the cache entry of image file `path` lives under the cache root (`<root>/<key[:2]>/<key>.npy`)."""
    key = cache_key(path)
    return cache_root(root) / key[:2] / f"{key}.npy"


def _check_hwc_uint8(shape: tuple, dtype: np.dtype, where: str) -> None:
    if len(shape) != 3 or shape[2] != 3 or np.dtype(dtype) != np.uint8:
        raise ValueError(f"{where}: expected an HWC RGB uint8 array (H, W, 3), got shape {tuple(shape)} dtype {dtype}; "
                         f"delete the entry (imcache.clear) and rebuild it")


def _write_entry(entry: Path, img: np.ndarray) -> int:
    """Write one entry atomically; returns its size in bytes. Only HWC uint8 RGB arrays are ever written."""
    _check_hwc_uint8(img.shape, img.dtype, f"cache entry {str(entry)!r}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(img), allow_pickle=False)
    data = buf.getvalue()
    atomic_write_bytes(entry, data)
    return len(data)


def _open_entry(entry: Path) -> np.ndarray:
    try:
        arr = np.load(entry, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"cache entry {str(entry)!r} is unreadable ({e}); delete it (imcache.clear) and rebuild") from e
    _check_hwc_uint8(arr.shape, arr.dtype, f"cache entry {str(entry)!r}")
    return arr


def load(path: str | os.PathLike, root: str | os.PathLike | None = None, *, build: bool = True) -> np.ndarray:
    """The decoded HWC uint8 RGB image of file `path`: a read-only np.memmap of its entry when cached (a patch crop
    touches only its pages), else decoded by read_image and, when `build`, cached for next time."""
    entry = cache_file(path, root)
    if entry.is_file():
        return _open_entry(entry)
    img = read_image(path)
    if build:
        _write_entry(entry, img)
    return img


def _npy_shape(entry: Path) -> tuple[int, int, int]:
    """Shape from a .npy header, without reading the data."""
    with open(entry, "rb") as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ValueError(f"cache entry {str(entry)!r} has .npy format version {version}; expected 1.0 or 2.0; "
                             f"delete it (imcache.clear) and rebuild")
    _check_hwc_uint8(shape, dtype, f"cache entry {str(entry)!r}")
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def read_shape(path: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[int, int, int]:
    """(H, W, 3) of image file `path` without decoding it: from its cache entry's header, else the file's header
    (C is 3 because read_image converts to RGB). Falls back to decoding only where Pillow cannot parse the header."""
    entry = cache_file(path, root)
    if entry.is_file():
        return _npy_shape(entry)
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError):
        h, w = read_image(path).shape[:2]  # Pillow cannot parse it: read_image decodes it or names the bad file
    return int(h), int(w), 3


def build(folder_or_files: str | os.PathLike | Iterable[str | os.PathLike], root: str | os.PathLike | None = None,
          *, progress: bool = True) -> dict[str, int]:
    """Decode and cache every image of a folder (lab.images.list_images) or list of files, skipping cached ones.

    Returns {"cached": new entries, "skipped": already cached, "bytes": total size of these files' entries}.
    A file that cannot be decoded raises read_image's ValueError naming it.
    """
    if isinstance(folder_or_files, (str, os.PathLike)):
        files = list_images(folder_or_files)
    else:
        files = [Path(p) for p in folder_or_files]
    cached = skipped = total = 0
    for path in progress_bar(files, leave=False) if progress and files else files:
        entry = cache_file(path, root)
        if entry.is_file():
            skipped += 1
            total += entry.stat().st_size
            continue
        total += _write_entry(entry, read_image(path))
        cached += 1
    return {"cached": cached, "skipped": skipped, "bytes": total}


def clear(root: str | os.PathLike | None = None) -> int:
    """Remove every cache entry under the cache root; returns how many. Touches only `<2 hex>/<32 hex>.npy` files,
    so a wrong `root` cannot delete other data."""
    root = cache_root(root)
    if not root.is_dir():
        return 0
    n = 0
    for sub in root.iterdir():
        if not (sub.is_dir() and re.fullmatch(r"[0-9a-f]{2}", sub.name)):
            continue
        for entry in sub.iterdir():
            if _ENTRY_RE.match(entry.name) and entry.name.startswith(sub.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                n += 1
        try:
            sub.rmdir()  # only when empty
        except OSError:
            pass
    return n
