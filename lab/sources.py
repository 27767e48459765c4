"""Image sources, read lazily: the photos scikit-image ships in its wheel (the embedded default, `chelsea` held out
for validation), a folder of HR images, paired LR/HR folders, benchmark sets laid out as `<Set>/HR` +
`<Set>/LR_bicubic/X<s>`, and weighted mixes of several.

A source lists its images and their sizes up front (from file headers, nothing decoded) and reads an image when a
patch needs it: from the decoded disk cache (`lab.imcache`, memory-mapped, so a patch touches only its pages) when
`disk_cache` is on, else decoded and kept in a bounded in-process LRU cache. A dataset of any size therefore costs a
bounded amount of memory.

`data` spec (a literal in the parameters cell): sources separated by commas, each `<source>[:<weight>]`, e.g.
`"div2k_hr:0.6, flickr2k:0.3, photos/:0.1"`; a source is 'builtin', 'builtin:<name>,<name>' (photo names
continue the list), a benchmark set name, or a folder. With weights, each patch draws its source by weight; without,
the sources are one pool of images.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import skimage.data as skd
from PIL import Image

from lab import imcache
from lab.images import IMAGE_EXTS, list_images, modcrop, read_image
from lab.prepare import MANIFEST
from lab.utils import benchmarks_dir, user_path

BUILTIN_TRAIN = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                 "motorcycle_left", "motorcycle_right", "brick", "grass", "gravel")
BUILTIN_VALID = ("chelsea",)
BUILTIN_GRAY = ("camera", "coins", "moon", "page", "text")  # gray photos and documents, by name or 'builtin:all'
BUILTIN = BUILTIN_TRAIN + BUILTIN_VALID + BUILTIN_GRAY
KNOWN_BENCHMARKS = ("Set5", "Set14", "B100", "BSD100", "Urban100", "Manga109", "DIV2K", "DIV2K_valid", "General100")
GRAY_POLICIES = ("convert", "skip")  # grayscale files: 3 equal channels (as papers score them), or left out
FILTER_KEYS = ("min_size", "gray", "skip")
LRU_MB = 256  # decoded images kept in memory per source when there is no disk cache


@dataclass
class ImagePair:
    """One image: its name, the HR array (HWC uint8) and, for paired data, its LR array."""

    name: str
    hr: np.ndarray
    lr: np.ndarray | None = None


def builtin_image(name: str) -> np.ndarray:
    """A photo shipped inside scikit-image's wheel, as HWC RGB uint8 (gray photos get 3 equal channels)."""
    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skd.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        fn = getattr(skd, name, None)
        if fn is None or name not in BUILTIN:
            raise KeyError(f"unknown built-in image {name!r}; known: {list(BUILTIN)}")
        img = fn()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


class _LRU:
    """Decoded images by key, at most `budget` bytes (least recently used dropped first); thread-safe."""

    def __init__(self, budget: int):
        self.budget, self.used, self.items, self.lock = budget, 0, OrderedDict(), threading.Lock()

    def get(self, key: Any, load: Callable[[], np.ndarray]) -> np.ndarray:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        arr = load()
        with self.lock:
            if arr.nbytes <= self.budget and key not in self.items:
                self.items[key] = arr
                self.used += arr.nbytes
                while self.used > self.budget:
                    _, old = self.items.popitem(last=False)
                    self.used -= old.nbytes
        return arr


@dataclass
class Item:
    """One image of a source: name, HR size, and how to read it (a file, or a built-in photo)."""

    name: str
    shape: tuple[int, int]
    hr_file: Path | None = None
    lr_file: Path | None = None
    builtin: str | None = None
    lr_shape: tuple[int, int] | None = None


class ImageSource:
    """Images read when needed (see the module docstring); `hr(i)`, `lr(i)` (paired only), `pair(i)`, `shape(i)`."""

    def __init__(self, name: str, items: Sequence[Item], *, disk_cache: bool = False, lru_mb: int = LRU_MB,
                 pairs: Sequence[ImagePair] | None = None):
        if not items and not pairs:
            raise FileNotFoundError(f"data source {name!r} holds no images")
        self.name, self.disk_cache = name, disk_cache
        self._pairs = list(pairs or [])
        self.items = list(items) if items else [Item(p.name, p.hr.shape[:2],
                                                      lr_shape=None if p.lr is None else p.lr.shape[:2])
                                                 for p in self._pairs]
        self._lru = _LRU(lru_mb << 20)

    @classmethod
    def from_pairs(cls, pairs: Sequence[ImagePair], name: str = "memory") -> ImageSource:
        """A source over images already in memory."""
        return cls(name, [], pairs=pairs)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"ImageSource({self.name!r}, {len(self)} images{', disk cache' if self.disk_cache else ''})"

    @property
    def paired(self) -> bool:
        return all(it.lr_file is not None or it.lr_shape is not None for it in self.items)

    def names(self) -> list[str]:
        return [it.name for it in self.items]

    def shape(self, i: int) -> tuple[int, int]:
        """(H, W) of image i's HR, read from its header."""
        return self.items[i].shape

    def _read(self, path: Path) -> np.ndarray:
        if self.disk_cache:
            return imcache.load(path)  # a fresh memory map each time: pages are released after the crop
        return self._lru.get(path, lambda: read_image(path))

    def hr(self, i: int) -> np.ndarray:
        """Image i's HR (HWC uint8; a read-only memory map when disk-cached)."""
        it = self.items[i]
        if self._pairs:
            return self._pairs[i].hr
        if it.builtin is not None:
            return self._lru.get(("builtin", it.builtin), lambda: builtin_image(it.builtin))
        return self._read(it.hr_file)

    def lr(self, i: int) -> np.ndarray | None:
        """Image i's paired LR, or None when the LR is made by a degradation."""
        it = self.items[i]
        if self._pairs:
            return self._pairs[i].lr
        return None if it.lr_file is None else self._read(it.lr_file)

    def pair(self, i: int) -> ImagePair:
        """Image i as an ImagePair (decoded)."""
        return ImagePair(self.items[i].name, np.asarray(self.hr(i)), None if (lr := self.lr(i)) is None
                         else np.asarray(lr))

    def pairs(self) -> list[ImagePair]:
        """Every image decoded (for small sets: validation, benchmarks)."""
        return [self.pair(i) for i in range(len(self))]

    def file(self, i: int) -> str:
        """Image i's file name (a built-in or in-memory image: its name), as a run records it."""
        it = self.items[i]
        return it.hr_file.name if it.hr_file is not None else it.name

    def fingerprint(self) -> str:
        """A digest of the images as files: each one's name and byte size (HR and paired LR; a built-in photo by
        name and pixel size, an image in memory by its pixels), so a rerun can tell its data changed meanwhile."""
        h = hashlib.sha256()
        for k, it in enumerate(self.items):
            if self._pairs:
                pair = self._pairs[k]
                parts = [pair.name, *(hashlib.sha256(np.ascontiguousarray(a)).hexdigest() + str(a.shape)
                                      for a in (pair.hr, pair.lr) if a is not None)]
            elif it.builtin is not None:
                parts = [it.name, f"builtin {it.shape[0]}x{it.shape[1]}"]
            else:
                parts = [it.name, *(f"{f.name} {f.stat().st_size}" for f in (it.hr_file, it.lr_file) if f is not None)]
            h.update(("\t".join(parts) + "\n").encode())
        return h.hexdigest()[:16]

    def subset(self, indices: Sequence[int], name: str | None = None) -> ImageSource:
        """The images at `indices`, read the same way (lazily unless already in memory)."""
        if self._pairs:
            return ImageSource(name or self.name, [], pairs=[self._pairs[i] for i in indices])
        return ImageSource(name or self.name, [self.items[i] for i in indices], disk_cache=self.disk_cache)


# ---------------------------------------------------------------------------------------------- building sources

def _header(path: Path) -> tuple[int, int, bool]:
    """(H, W, is_gray) from an image file's header, nothing decoded; ValueError naming a file Pillow cannot read."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return h, w, im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
    except (OSError, SyntaxError) as e:
        raise ValueError(f"image file {str(path)!r} cannot be read ({e}); remove it or add it to "
                         "data_filters skip") from None


def check_filters(filters: dict[str, Any] | None) -> dict[str, Any]:
    """Data filters: `min_size` (px, shorter HR side), `gray` (convert | skip), `skip` (file names or stems)."""
    f = dict(filters or {})
    bad = [k for k in f if k not in FILTER_KEYS]
    if bad:
        raise ValueError(f"unknown data filter(s) {bad}; accepted: {FILTER_KEYS}")
    if not isinstance(f.get("min_size", 0), int) or f.get("min_size", 0) < 0:
        raise ValueError(f"data filter min_size must be an int >= 0 (pixels), got {f['min_size']!r}")
    if f.get("gray", "convert") not in GRAY_POLICIES:
        raise ValueError(f"data filter gray must be one of {GRAY_POLICIES}, got {f['gray']!r}")
    if not isinstance(f.get("skip", []), (list, tuple)):
        raise ValueError(f"data filter skip must be a list of file names, got {f['skip']!r}")
    return {"min_size": f.get("min_size", 0), "gray": f.get("gray", "convert"), "skip": list(f.get("skip", []))}


def _folder_items(folder: Path, filters: dict[str, Any]) -> list[Item]:
    files = list_images(folder)
    others = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_EXTS
                    and not p.name.startswith(".") and p.name != MANIFEST)
    if others:
        warnings.warn(f"{folder}: skipped {len(others)} non-image file(s): {others[:5]}"
                      f"{' ...' if len(others) > 5 else ''}", stacklevel=3)
    items, dropped = [], {"small": [], "gray": [], "listed": []}
    skip = set(filters["skip"])
    for f in files:
        if f.name in skip or f.stem in skip:
            dropped["listed"].append(f.name)
            continue
        h, w, gray = _header(f)
        if gray and filters["gray"] == "skip":
            dropped["gray"].append(f.name)
            continue
        if min(h, w) < filters["min_size"]:
            dropped["small"].append(f.name)
            continue
        items.append(Item(f.stem, (h, w), hr_file=f))
    if not items:
        raise FileNotFoundError(f"no usable images in {str(folder)!r} ({len(files)} image files; filtered out: "
                                f"{ {k: len(v) for k, v in dropped.items()} }); check the folder and data_filters")
    return items


def _match_lr(lr_dir: Path, hr_items: list[Item], scale: int) -> list[Item]:
    """Pair HR items with LR files by stem (LR names may carry an `x2`-style suffix); sizes must agree."""
    by_stem = {it.name: it for it in hr_items}
    out = []
    for f in list_images(lr_dir):
        stem = f.stem
        for suffix in (f"x{scale}", f"_x{scale}", f"X{scale}", f"_X{scale}"):
            if stem.endswith(suffix) and stem[: -len(suffix)] in by_stem:
                stem = stem[: -len(suffix)]
        if stem not in by_stem:
            raise FileNotFoundError(f"LR image {f.name!r} has no HR partner named {stem}.* among "
                                    f"{len(by_stem)} HR images")
        it = by_stem[stem]
        h, w, _ = _header(f)
        hh, ww = it.shape[0] - it.shape[0] % scale, it.shape[1] - it.shape[1] % scale
        if (h * scale, w * scale) != (hh, ww):
            raise ValueError(f"{f.name}: LR {h}x{w} x{scale} != modcropped HR {hh}x{ww}; is the scale right?")
        out.append(Item(it.name, it.shape, hr_file=it.hr_file, lr_file=f, lr_shape=(h, w)))
    if not out:
        raise FileNotFoundError(f"no LR images in {str(lr_dir)!r}")
    return out


def find_benchmark(name: str) -> Path:
    """Locate benchmark set `name` under `$LAB_BENCHMARKS` / the reference data; error says where it looked."""
    p = Path(name)
    if (p / "HR").is_dir():
        return p
    root = benchmarks_dir()
    if root is not None and (root / name / "HR").is_dir():
        return root / name
    raise FileNotFoundError(f"benchmark set {name!r} not found; set LAB_BENCHMARKS to a folder holding "
                            f"{name}/HR (and {name}/LR_bicubic/X<s>), or pass a path")


def open_source(spec: str, scale: int, lr_dir: str = "", *, filters: dict[str, Any] | None = None,
                disk_cache: bool = False, with_lr: bool = True) -> ImageSource:
    """One source from its spec ('builtin', 'builtin:<names>', a benchmark set name, a folder; `lr_dir` pairs a
    folder with LR images). A benchmark's own LR files are used unless `with_lr=False` (the LR is then made by a
    degradation)."""
    filters = check_filters(filters)
    if spec == "builtin" or spec.startswith("builtin:"):
        names = BUILTIN_TRAIN if spec == "builtin" else BUILTIN_TRAIN + BUILTIN_GRAY if spec == "builtin:all" else \
            [s.strip() for s in spec.split(":", 1)[1].split(",") if s.strip()]
        bad = [n for n in names if n not in BUILTIN]
        if bad or not names:
            raise KeyError(f"unknown built-in image(s) {bad or names}; known: {list(BUILTIN)} ('builtin:all': all "
                           f"but the validation photo {BUILTIN_VALID[0]})")
        items = []
        for n in names:
            h, w = builtin_image(n).shape[:2]  # the photos are small and the LRU keeps them decoded
            if min(h, w) >= filters["min_size"] and n not in filters["skip"]:
                items.append(Item(n, (h, w), builtin=n))
        return ImageSource(spec, items)
    p = user_path(spec)
    if not p.is_dir():
        try:
            p = find_benchmark(spec)
        except FileNotFoundError:
            raise FileNotFoundError(f"data source {spec!r} is neither 'builtin', 'builtin:<names>', a folder, "
                                    "nor a benchmark set found under LAB_BENCHMARKS") from None
    if (p / "HR").is_dir():  # a benchmark set
        items = _folder_items(p / "HR", filters)
        lr = p / "LR_bicubic" / f"X{scale}"
        if with_lr and lr.is_dir() and not lr_dir:
            items = _match_lr(lr, items, scale)
    else:
        items = _folder_items(p, filters)
    if lr_dir:
        items = _match_lr(user_path(lr_dir), items, scale)
    return ImageSource(spec, items, disk_cache=disk_cache)


_WEIGHT_RE = re.compile(r"^(?P<src>.+?):(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)$")


def parse_data_spec(spec: str) -> list[tuple[str, float | None]]:
    """`"div2k_hr:0.6, flickr2k:0.3, photos/:0.1"` -> [(source, weight)]; see the module docstring."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data spec must be a non-empty string like 'builtin' or 'div2k:0.7, photos/:0.3', got "
                         f"{spec!r}")
    out: list[list[Any]] = []
    for tok in [t.strip() for t in spec.split(",") if t.strip()]:
        m = _WEIGHT_RE.match(tok)
        src, w = (m.group("src").strip(), float(m.group("w"))) if m else (tok, None)
        builtin_cont = (out and out[-1][0].startswith("builtin:") and out[-1][1] is None
                        and src in BUILTIN)
        if builtin_cont:
            out[-1][0] += f",{src}"
            out[-1][1] = w
        else:
            out.append([src, w])
    weights = [w for _, w in out]
    if any(w is not None for w in weights) and any(w is None for w in weights):
        raise ValueError(f"data spec {spec!r}: give a weight to every source or to none (e.g. 'a:0.7, b:0.3')")
    if any(w is not None and not (math.isfinite(w) and w > 0) for w in weights):
        raise ValueError(f"data spec {spec!r}: weights must be positive numbers")
    return [(s, w) for s, w in out]


@dataclass
class SourceMix:
    """Several sources for one run: with `weights`, a patch draws its source by weight (then an image uniformly);
    without, the sources form one pool of images."""

    sources: list[ImageSource]
    weights: list[float] | None = None
    spec: str = ""
    index: list[tuple[int, int]] = field(default_factory=list)  # flat pool position -> (source, image)

    def __post_init__(self):
        self.index = [(s, i) for s, src in enumerate(self.sources) for i in range(len(src))]
        if self.weights is not None:
            total = float(sum(self.weights))
            self.weights = [w / total for w in self.weights]

    def __len__(self) -> int:
        return len(self.index)

    def draw(self, rng: np.random.Generator, i: int) -> tuple[ImageSource, int]:
        """The (source, image) of pool item `i`: by weight when weighted, else the pool's i-th image (cyclic)."""
        if self.weights is None:
            s, k = self.index[i % len(self.index)]
            return self.sources[s], k
        s = int(rng.choice(len(self.sources), p=self.weights))
        return self.sources[s], int(rng.integers(len(self.sources[s])))

    def describe(self) -> list[dict[str, Any]]:
        """What a run records: each source, its image count and weight."""
        ws = self.weights or [None] * len(self.sources)
        return [{"source": s.name, "images": len(s), "weight": w, "disk_cache": s.disk_cache}
                for s, w in zip(self.sources, ws)]


def open_sources(spec: str | Sequence[ImagePair], scale: int, lr_dir: str = "", *,
                 filters: dict[str, Any] | None = None, disk_cache: bool = False) -> SourceMix:
    """A run's training images from a data spec (or in-memory ImagePairs), lazily (see the module docstring)."""
    if not isinstance(spec, str):
        return SourceMix([ImageSource.from_pairs(list(spec))])
    parts = parse_data_spec(spec)
    if lr_dir and len(parts) > 1:
        raise ValueError(f"data_lr pairs one HR folder with its LR folder; data {spec!r} has {len(parts)} sources")
    sources = [open_source(s, scale, lr_dir, filters=filters, disk_cache=disk_cache) for s, _ in parts]
    weights = [w for _, w in parts] if parts[0][1] is not None else None
    return SourceMix(sources, weights, spec)


SPLIT_PREFIX = "split:"
SPLIT_FORM = "'split:<share>' with 0 < share < 1, e.g. 'split:0.05'"


def parse_split(spec: Any) -> float | None:
    """The share of a held-out validation spec 'split:<share>', None for any other spec; a bad share is a
    ValueError naming the accepted form."""
    if not isinstance(spec, str) or not spec.strip().startswith(SPLIT_PREFIX):
        return None
    raw = spec.strip()[len(SPLIT_PREFIX):].strip()
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not 0 < share < 1:  # NaN fails too
        raise ValueError(f"valid {spec!r}: a held-out split is {SPLIT_FORM}; got share {raw!r}")
    return share


def valid_sets(valid: str | Sequence[str]) -> list[str]:
    """The validation sets of a `valid` param: 'a; b' or a list (the first one is `valid`, judged by the final
    scores too); each a source spec or 'split:<share>' (at most one split)."""
    specs = [v.strip() for v in (valid.split(";") if isinstance(valid, str) else valid)] if valid else []
    if not specs or not all(isinstance(v, str) and v for v in specs):
        raise ValueError(f"valid {valid!r}: expected a source, {SPLIT_FORM}, or several joined by ';' "
                         "(e.g. 'split:0.05; Set5')")
    if sum(parse_split(v) is not None for v in specs) > 1:
        raise ValueError(f"valid {valid!r}: at most one held-out split")
    labels = [set_label(v) for v in specs[1:]]
    if len(set(labels)) < len(labels):
        raise ValueError(f"valid {valid!r}: two validation sets share the column name {labels}; name them apart")
    return specs


def set_label(spec: str) -> str:
    """The history column prefix of a further validation set: 'Set5' -> 'set5', 'photos/' -> 'photos',
    'builtin:chelsea' -> 'chelsea', 'split:0.05' -> 'split'."""
    if parse_split(spec) is not None:
        return "split"
    name = spec.split(":", 1)[1] if spec.startswith("builtin:") else Path(spec.rstrip("/")).name
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "set"


def hold_out(mix: SourceMix, share: float) -> tuple[SourceMix, ImageSource, dict[str, Any]]:
    """`share` of the training pool held out for validation: (the training mix without those images, the
    held-out images, the record a run keeps of them). The images are ranked by a seeded hash of their source and
    file name, so the same files give the same split in every rerun, derived run and training seed, whatever the
    listing order."""
    ranked = sorted((image_seed(f"{src.name}/{src.file(i)}", "split"), s, i)
                    for s, src in enumerate(mix.sources) for i in range(len(src)))
    k = max(1, round(share * len(ranked)))
    if k >= len(ranked):
        raise ValueError(f"valid 'split:{share:g}' holds out {k} of {len(ranked)} training image(s), leaving none "
                         "to train on; lower the share or add images")
    held = sorted((s, i) for _, s, i in ranked[:k])
    taken = set(held)
    keep = [[i for i in range(len(src)) if (s, i) not in taken] for s, src in enumerate(mix.sources)]
    empty = [src.name for src, kept in zip(mix.sources, keep) if not kept]
    if empty:
        raise ValueError(f"valid 'split:{share:g}' holds out every image of source(s) {empty}; lower the share")
    train = SourceMix([src.subset(kept) for src, kept in zip(mix.sources, keep)], mix.weights, mix.spec)
    if any(src._pairs for src in mix.sources):  # in-memory images: one source
        valid = ImageSource.from_pairs([mix.sources[s].pair(i) for s, i in held], "split")
    else:
        valid = ImageSource("split", [mix.sources[s].items[i] for s, i in held])
    record = {"share": share, "held_out": k, "train_images": len(ranked) - k,
              "images": [{"source": mix.sources[s].name, "file": mix.sources[s].file(i)} for s, i in held]}
    return train, valid, record


def data_changes(recorded: Sequence[dict[str, Any]], spec: str, scale: int, lr_dir: str = "", *,
                 filters: dict[str, Any] | None = None) -> list[str]:
    """What differs between the training sources a run recorded (`fingerprint`s, from `fingerprints`) and the same
    data spec's files now: a line per source changed or gone, [] when every one matches."""
    try:
        now = open_sources(spec, scale, lr_dir, filters=filters).sources
    except (OSError, ValueError, KeyError) as e:
        return [f"training data {spec!r} cannot be read now ({e})"]
    out = []
    for k, then in enumerate(recorded):
        src = now[k] if k < len(now) else None
        if src is None or then.get("source") != src.name:
            out.append(f"training data {spec!r} no longer gives source {then.get('source')!r}")
        elif then.get("fingerprint") not in (None, src.fingerprint()):
            count = then.get("files")
            what = (f"{count} image files then, {len(src)} now" if count is not None and count != len(src) else
                    "files renamed or rewritten: names or byte sizes differ")
            out.append(f"training data {src.name!r} changed since ({what})")
    return out


def fingerprints(mix: SourceMix) -> list[dict[str, Any]]:
    """Each source's file count and `ImageSource.fingerprint`, taken before any held-out split (what a rerun checks)."""
    return [{"files": len(src), "fingerprint": src.fingerprint()} for src in mix.sources]


def image_seed(name: str, salt: str = "valid", base: int = 0) -> int:
    """A fixed seed for degrading image `name` (same in every epoch, resumed run, rerun and run of another seed)."""
    h = hashlib.sha256(f"{base}:{salt}:{name}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def load_source(source: str, scale: int, lr_source: str = "", *, with_lr: bool = True) -> list[ImagePair]:
    """Every image of one source decoded (small sets: validation, benchmarks)."""
    return open_source(source, scale, lr_source, with_lr=with_lr).pairs()


def modcropped(pair: ImagePair, scale: int) -> ImagePair:
    """The pair with its HR cropped to a multiple of `scale` (its LR kept)."""
    return ImagePair(pair.name, modcrop(pair.hr, scale), pair.lr)


__all__ = ["ImagePair", "ImageSource", "SourceMix", "Item", "builtin_image", "data_changes", "fingerprints",
           "open_source", "open_sources", "parse_data_spec", "parse_split", "hold_out", "valid_sets", "set_label",
           "find_benchmark", "load_source", "image_seed", "check_filters", "BUILTIN_TRAIN", "BUILTIN_GRAY",
           "KNOWN_BENCHMARKS", "BUILTIN_VALID", "modcropped"]
