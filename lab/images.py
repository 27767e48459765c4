"""Image files and tensors: read/write with clear errors, uint8 <-> float tensors, convention checks.

Convention: arrays from files are HWC RGB (uint8, or uint16 for 16-bit files); tensors are
(B, C, H, W) float32 RGB in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from lab.utils import atomic_write_bytes

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # corrupt files raise here, not log


class DataError(ValueError):
    """A data file that exists but cannot be used as it is (empty, corrupt, truncated, an unsupported mode, too
    small): the user's data to fix, not a failure of the lab (`lab run` exits 2 for it)."""


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Sorted image files in `folder` (by the extensions in IMAGE_EXTS); error if the folder is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def read_image(path: str | os.PathLike, *, keep_16bit: bool = False) -> np.ndarray:
    """Read an image file as HWC RGB uint8 (gray -> 3 equal channels, RGBA -> alpha dropped).

    16-bit files are scaled to uint8 unless `keep_16bit=True`, which returns uint16.
    Raises FileNotFoundError for a missing file, IsADirectoryError for a folder and DataError (a ValueError) for an
    empty, corrupt or unsupported one.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not an image file; give one of its images, or pass the "
                                "folder where a folder of images is accepted (e.g. -p data)")
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"image file {str(path)!r} is empty (0 bytes); re-export or remove it")
    raw = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DataError(f"image file {str(path)!r} could not be decoded (corrupt, truncated or an unsupported "
                        "format); re-export it or remove it from its folder")
    if img.dtype == np.uint16:
        if not keep_16bit:
            img = np.round(img.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise DataError(f"image file {str(path)!r} has dtype {img.dtype}; expected 8- or 16-bit integers: re-export "
                        "it as 8- or 16-bit")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise DataError(f"image file {str(path)!r} has {img.shape[2]} channels; expected 1, 3 or 4: re-export it as "
                        "RGB")
    return np.ascontiguousarray(img)


def write_image(path: str | os.PathLike, img: np.ndarray | torch.Tensor) -> Path:
    """Write an RGB image (HWC uint8/uint16 array, or a (C,H,W)/(1,C,H,W) float tensor in [0, 1]) atomically."""
    path = Path(path)
    if isinstance(img, torch.Tensor):
        img = tensor_to_uint8(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image needs uint8/uint16 arrays, got {img.dtype}; convert with tensor_to_uint8")
    bgr = img[:, :, 0] if img.shape[2] == 1 else cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    ext = path.suffix.lower() or ".png"
    ok, buf = cv2.imencode(ext, bgr)
    if not ok:
        raise ValueError(f"could not encode {str(path)!r} as {ext}")
    return atomic_write_bytes(path, buf.tobytes())


def uint8_to_tensor(img: np.ndarray) -> torch.Tensor:
    """HWC uint8 (or uint16) array -> (1, C, H, W) float32 tensor in [0, 1]."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"expected an HWC array, got shape {img.shape}")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(scale)
    return t.unsqueeze(0)


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) float tensor in [0, 1] -> HWC uint8, clamped and rounded (as papers score)."""
    t = t.detach()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor_to_uint8 takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"expected (C, H, W) or (1, C, H, W), got shape {tuple(t.shape)}")
    arr = t.float().clamp(0, 1).mul(255.0).round().to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(arr.transpose(1, 2, 0))


def check_image_tensor(x: torch.Tensor, name: str = "input") -> torch.Tensor:
    """Check the (B, C, H, W) floating-point convention; raise ValueError saying expected vs actual."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a float tensor in [0, 1], got dtype {x.dtype}")
    return x


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop an HWC (or HW) array so height and width are multiples of `scale`, as benchmark code does."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
