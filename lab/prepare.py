"""Sub-images the way the field prepares DIV2K: overlapping crops of each large image, written once as PNGs, so
training reads small files instead of decoding 2K images (BasicSR's scripts/data_preparation/extract_subimages.py:
crop 480, step 240, thresh_size 0).

Layout of an output folder:
  <stem>_s001.png, ...     the crops of source `<stem>.*`, numbered 1-based in row-major order of their corners
  prepare.json             src (absolute), crop, step, thresh, and per source image its crop count
Unlike BasicSR, an image smaller than `crop` on a side gives no crops (with a warning naming it) instead of short
crops. A run is resumable: crops already on disk with the right size are kept; other settings into the same folder
are refused, so crops of different settings never mix.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from fastprogress.fastprogress import progress_bar

from lab.images import list_images, read_image, write_image
from lab.imcache import read_shape
from lab.utils import JSON_ERRORS, atomic_write_json, now, read_json_file

MANIFEST = "prepare.json"
_SETTINGS = ("src", "crop", "step", "thresh")


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _positions(side: int, crop: int, step: int, thresh: int) -> list[int]:
    """0, step, 2*step, ... while the crop fits, plus one flush with the far border if more than `thresh` is left."""
    if side < crop:
        return []
    pos = list(range(0, side - crop + 1, step))
    if side - (pos[-1] + crop) > thresh:
        pos.append(side - crop)
    return pos


def subimage_boxes(h: int, w: int, crop: int, step: int, thresh: int = 0) -> list[tuple[int, int]]:
    """Top-left (y, x) corners of the crop x crop sub-images of an h x w image, row-major, as BasicSR places them;
    empty when the image is smaller than `crop` on a side."""
    h, w = _check_int("h", h, 0), _check_int("w", w, 0)
    crop, step, thresh = _check_int("crop", crop, 1), _check_int("step", step, 1), _check_int("thresh", thresh, 0)
    return [(y, x) for y in _positions(h, crop, step, thresh) for x in _positions(w, crop, step, thresh)]


def crop_name(stem: str, index: int) -> str:
    """File name of the `index`-th (1-based) crop of source `stem`: `<stem>_s001.png`."""
    return f"{stem}_s{index:03d}.png"


def _has_size(path: Path, crop: int) -> bool:
    """Whether a crop already on disk is a readable crop x crop image (else it is rewritten)."""
    if not path.is_file():
        return False
    try:
        return read_shape(path)[:2] == (crop, crop)
    except ValueError:
        return False


def _check_manifest(out: Path, settings: dict[str, Any]) -> None:
    """Refuse an output folder prepared with other settings, or holding images that no manifest accounts for."""
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            old = read_json_file(manifest)
        except JSON_ERRORS as e:
            raise ValueError(f"{str(manifest)!r} is unreadable ({e}); choose another output folder or delete it") from e
        old_settings = {k: old.get(k) for k in _SETTINGS} if isinstance(old, dict) else {}
        if old_settings != settings:
            raise ValueError(f"output folder {str(out)!r} was prepared with other settings {old_settings}, not "
                             f"{settings}; choose another output folder (crops of different settings must not mix)")
    elif out.is_dir() and list_images(out):
        raise ValueError(f"output folder {str(out)!r} holds images but no {MANIFEST}; choose an empty or new folder")


def prepare(src: str | os.PathLike, out: str | os.PathLike, crop: int = 480, step: int = 240, thresh: int = 0,
            *, progress: bool = True) -> dict[str, Any]:
    """Write the sub-images (subimage_boxes) of every image in folder `src` as PNGs into folder `out`; resumable.

    Returns {"images": sources, "crops": crops in total, "written": crops written now, "skipped_small": names of
    sources smaller than `crop`}.
    """
    crop, step, thresh = _check_int("crop", crop, 1), _check_int("step", step, 1), _check_int("thresh", thresh, 0)
    src, out = Path(src).resolve(), Path(out).resolve()
    files = list_images(src)
    if out == src:
        raise ValueError(f"output folder {str(out)!r} is the source folder; choose another one")
    stems: dict[str, str] = {}
    for p in files:
        if p.stem in stems:
            raise ValueError(f"sources {stems[p.stem]!r} and {p.name!r} in {str(src)!r} share the stem {p.stem!r}, "
                             f"so their crops would collide; rename one")
        stems[p.stem] = p.name
    settings = {"src": str(src), "crop": crop, "step": step, "thresh": thresh}
    _check_manifest(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MANIFEST).is_file():  # settings first, so an interrupted run resumes instead of being refused
        atomic_write_json(out / MANIFEST, {**settings, "images": {}, "updated": now()})

    counts: dict[str, int] = {}
    written, skipped_small = 0, []
    for path in progress_bar(files, leave=False) if progress and files else files:
        h, w, _ = read_shape(path)
        boxes = subimage_boxes(h, w, crop, step, thresh)
        counts[path.name] = len(boxes)
        if not boxes:
            warnings.warn(f"{str(path)!r} is {h}x{w}, smaller than crop {crop}: skipped (no sub-images)", stacklevel=2)
            skipped_small.append(path.name)
            continue
        targets = [out / crop_name(path.stem, i) for i in range(1, len(boxes) + 1)]
        todo = [i for i, t in enumerate(targets) if not _has_size(t, crop)]
        if not todo:
            continue
        img = read_image(path)
        if img.shape[:2] != (h, w):
            raise ValueError(f"{str(path)!r} decodes to {img.shape[:2]} but its header says {(h, w)}; re-export it")
        for i in todo:
            y, x = boxes[i]
            write_image(targets[i], img[y:y + crop, x:x + crop])
        written += len(todo)

    total = sum(counts.values())
    atomic_write_json(out / MANIFEST, {**settings, "images": counts, "crops": total, "updated": now()})
    return {"images": len(files), "crops": total, "written": written, "skipped_small": skipped_small}
