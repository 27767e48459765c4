"""Video in and out with OpenCV: frames (every N-th, near-duplicates dropped), a video written back at the source's
frame rate, training folders from an episode, and a flicker measure.

Frames are HWC uint8 RGB, as `lab.images` reads pictures. OpenCV reads and writes pictures only: the audio track of
a source is not carried over to a written video (mux it back with e.g. `ffmpeg -i sr.mp4 -i source.mkv -map 0:v
-map 1:a -c copy out.mkv`).

Near-duplicates: anime holds one drawing for 2-3 frames, and a codec adds a little noise to each copy, so a frame is
a duplicate when its mean absolute difference to the last kept frame, on a gray copy shrunk 4x (codec noise
averages out), is below `dedup_threshold` (0-255 units; 1.5 by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from fastprogress.fastprogress import progress_bar

from lab.images import write_image

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DEDUP_THRESHOLD = 1.5
AUDIO_NOTE = "audio is not carried over (OpenCV writes pictures only)"


def is_video(path: str | os.PathLike) -> bool:
    """Whether `path` names a video file by its extension (VIDEO_EXTS)."""
    return Path(path).suffix.lower() in VIDEO_EXTS


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says of itself: frames per second, frame count (as the container states it), size."""

    fps: float
    frames: int
    width: int
    height: int


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {str(path)!r} does not exist")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"video {str(path)!r} could not be opened (corrupt, or a codec OpenCV lacks); accepted: "
                         f"{', '.join(VIDEO_EXTS)} files OpenCV can decode")
    return cap


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, frame count and size of a video; ValueError for a file OpenCV cannot decode."""
    cap = _open(path)
    try:
        ok, first = cap.read()
        if not ok or first is None:
            raise ValueError(f"video {str(path)!r} has no decodable frame (corrupt or empty)")
        info = VideoInfo(float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                         first.shape[1], first.shape[0])
    finally:
        cap.release()
    return info


def _signature(frame: np.ndarray) -> np.ndarray:
    """A gray copy shrunk 4x (area), float32: what near-duplicate detection compares."""
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(g, (max(1, g.shape[1] // 4), max(1, g.shape[0] // 4)), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def read_frames(path: str | os.PathLike, every: int = 1, dedup: bool = False,
                dedup_threshold: float = DEDUP_THRESHOLD) -> Iterator[tuple[int, np.ndarray]]:
    """(source frame index, HWC uint8 RGB frame) of every `every`-th frame, near-duplicates dropped with `dedup`.

    ValueError for a video OpenCV cannot decode, or `every` < 1.
    """
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every={every!r}: expected an integer >= 1 (1 keeps every frame)")
    cap = _open(path)
    last = None
    i = -1
    try:
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            i += 1
            if i % every:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if dedup:
                sig = _signature(rgb)
                if last is not None and sig.shape == last.shape and float(np.abs(sig - last).mean()) < dedup_threshold:
                    continue
                last = sig
            yield i, rgb
    finally:
        cap.release()
    if i < 0:
        raise ValueError(f"video {str(path)!r} has no decodable frame (corrupt or empty)")


def write_video(frames: Sequence[tuple[int, str | os.PathLike | np.ndarray]], path: str | os.PathLike, fps: float,
                total: int | None = None, progress: bool = True) -> Path:
    """Write (source index, frame or image file) pairs as a video at `fps`; each frame is repeated until the next
    one's source index (up to `total` frames), so dropped or skipped frames keep the source's timing and the video
    its length. The audio is not carried over (AUDIO_NOTE). Written to a temp name, then renamed."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FOURCC:
        raise ValueError(f"cannot write video {str(path)!r}; accepted extensions: {', '.join(FOURCC)}")
    if not frames:
        raise ValueError(f"no frames to write to {str(path)!r}")
    if not fps or fps <= 0:
        raise ValueError(f"fps={fps!r}: expected a frame rate > 0")
    frames = sorted(frames, key=lambda f: f[0])
    ends = [f[0] for f in frames[1:]] + [max(total or 0, frames[-1][0] + 1)]
    tmp = path.with_name(f".{path.stem}.partial{ext}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for (idx, src), end in progress_bar(list(zip(frames, ends)), leave=False) if progress else zip(frames, ends):
            img = src if isinstance(src, np.ndarray) else cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
            if writer is None:
                h, w = img.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC[ext]), float(fps), (w, h))
                if not writer.isOpened():
                    raise ValueError(f"OpenCV cannot write {ext} video here ({FOURCC[ext]}); try .avi")
            bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
            for _ in range(max(1, end - idx)):
                writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()
    os.replace(tmp, path)
    return path


def extract_frames(video: str | os.PathLike, out: str | os.PathLike, every: int = 1, dedup: bool = False,
                   dedup_threshold: float = DEDUP_THRESHOLD, progress: bool = True) -> dict[str, int]:
    """Write a video's frames (every N-th, near-duplicates dropped) as PNGs `<stem>_<index>.png` into `out`, a
    training folder; frames already there are kept. Returns {'frames': kept, 'written': new ones, 'source': read}."""
    video, out = Path(video), Path(out)
    info = video_info(video)
    bar = progress_bar(range(info.frames or 1), leave=False) if progress else None
    if bar is not None:
        bar.update(0)  # starts its clock: updated by hand, not iterated
    kept = written = 0
    last = -1
    for idx, frame in read_frames(video, every, dedup, dedup_threshold):
        target = out / f"{video.stem}_{idx:06d}.png"
        if not target.is_file():
            write_image(target, frame)
            written += 1
        kept += 1
        last = idx
        if bar is not None:
            bar.update(min(idx + 1, bar.total))
    return {"frames": kept, "written": written, "source": max(last + 1, info.frames)}


def _flicker_view(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Gray, area-resized to `hw`, Gaussian-blurred (sigma 2 px): what flicker compares (low frequencies only)."""
    g = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    if g.shape[:2] != hw:
        g = cv2.resize(g, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g.astype(np.float32), (0, 0), 2.0)


class FlickerMeter:
    """Streaming form of `flicker`: `add(input, output)` frame by frame, `result()` at the end."""

    def __init__(self) -> None:
        self.prev: tuple[float, float] | None = None
        self.d_in: list[float] = []
        self.d_out: list[float] = []
        self.tone: list[float] = []
        self._views: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, inp: np.ndarray, out: np.ndarray) -> None:
        """Take the next (input frame, output frame) pair (HWC uint8 RGB)."""
        hw = inp.shape[:2]
        vi, vo = _flicker_view(inp, hw), _flicker_view(out, hw)
        a, b = np.polyfit(vi.ravel().astype(np.float64), vo.ravel().astype(np.float64), 1)  # the tone map in -> out
        if self.prev is not None and self._views is not None:
            pa, pb = self.prev
            self.tone.append(float(np.abs((a - pa) * vi + (b - pb)).mean()))
            self.d_in.append(float(np.abs(vi - self._views[0]).mean()))
            self.d_out.append(float(np.abs(vo - self._views[1]).mean()))
        self.prev, self._views = (float(a), float(b)), (vi, vo)

    def result(self) -> dict[str, float]:
        """{'flicker', 'input_change', 'output_change', 'pairs'} (see `flicker`)."""
        if not self.tone:
            raise ValueError("flicker needs at least 2 frames")
        return {"flicker": float(np.mean(self.tone)), "input_change": float(np.mean(self.d_in)),
                "output_change": float(np.mean(self.d_out)), "pairs": len(self.tone)}


def flicker(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> dict[str, float]:
    """How much consecutive output frames differ beyond what their input frames explain (0-255 units).

    Each frame is taken to gray, brought to the input's size (area) and blurred (sigma 2 px), so detail the model
    adds does not count. Per frame the tone map from input to output is fitted (out = a * in + b, least squares);
    'flicker' is the mean over consecutive pairs of |(a_t - a_t-1) * in_t + (b_t - b_t-1)|, how far the output's
    brightness and contrast moved that the input's change does not explain: 0 for a steady model (even one that
    stretches contrast the same way in every frame), large for the jumps of a per-frame autocontrast. Beside it the
    mean absolute change between consecutive input and output frames ('input_change', 'output_change').
    Returns {'flicker', 'input_change', 'output_change', 'pairs'}.
    """
    if len(inputs) != len(outputs):
        raise ValueError(f"flicker needs as many input as output frames, got {len(inputs)} and {len(outputs)}")
    meter = FlickerMeter()
    for a, b in zip(inputs, outputs):
        meter.add(a, b)
    return meter.result()
