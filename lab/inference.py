"""A trained model on real pictures (no ground truth): `lab infer MODEL INPUT... --out DIR` as a recorded run.

The model comes from a run id, a lab checkpoint or an imported official checkpoint (`lab.models.load_model`); the
inputs are images, folders of images or videos. Each picture is super-resolved (`lab.infer.infer`: whole, or tiled
with the model's receptive field as context, as evaluation does; optional x8 self-ensemble, precision, post-ops),
then fitted to `--size` if one is given (`lab.sizing`), and written to the output folder. An output that exists is
skipped, so an interrupted inference resumes where it stopped. A video's frames (every N-th, near-duplicates
dropped) go to `<out>/<video stem>/`, and the super-resolved video is written back beside them at the source's frame
rate (`lab.video`; no audio).

The run (its own kind: params `kind: infer`) records the model and where it came from, the inputs, the settings,
the timing (images/s) and, per picture, the input, the output file and a no-reference measure: the high-frequency
energy of the output over that of bicubic upscaling of the input (`lab.metrics.hf_energy_ratio`; above 1 sharper
than bicubic), and for a video the flicker (`lab.video.flicker`). So the ledger says which model made which
pictures, and `lab compare` can put two inference runs side by side.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from fastprogress.fastprogress import progress_bar

from lab import vocab
from lab.images import IMAGE_EXTS, list_images, read_image, tensor_to_uint8, uint8_to_tensor, write_image
from lab.infer import POST_OPS, infer, resolve_device
from lab.infer_records import KIND, LABEL, bicubic_reference
from lab.metrics import hf_energy_ratio
from lab.models import load_model
from lab.runs import Run, create, runs_dir
from lab.sizing import RESAMPLING, check_fit_mode, check_not_smaller, describe, fit, parse_size
from lab.video import AUDIO_NOTE, DEDUP_THRESHOLD, FlickerMeter, is_video, read_frames, video_info, write_video

PRECISIONS = vocab.PRECISIONS


@dataclass(frozen=True)
class Source:
    """One input: a picture file, or a video file (its frames are the pictures)."""

    path: Path
    video: bool


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[Source]:
    """The pictures and videos named by `inputs` (files, or folders: their images and videos, sorted).

    FileNotFoundError for a missing path; ValueError for a file that is neither a picture nor a video, for no
    input at all, or for two inputs whose outputs would share a name.
    """
    out: list[Source] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = [Source(f, False) for f in list_images(p)]
            found += [Source(f, True) for f in sorted(p.iterdir()) if f.is_file() and is_video(f)]
            if not found:
                raise ValueError(f"input folder {str(p)!r} holds no picture ({', '.join(IMAGE_EXTS)}) or video")
            out += sorted(found, key=lambda s: s.path.name)
        elif p.is_file():
            if not (is_video(p) or p.suffix.lower() in IMAGE_EXTS):
                raise ValueError(f"input {str(p)!r} is neither a picture ({', '.join(IMAGE_EXTS)}) nor a video")
            out.append(Source(p, is_video(p)))
        else:
            raise FileNotFoundError(f"input {str(p)!r} does not exist (give pictures, folders or videos)")
    if not out:
        raise ValueError("no input: give pictures, folders of pictures or videos")
    stems: dict[str, Path] = {}
    for s in out:
        if s.path.stem in stems:
            raise ValueError(f"inputs {str(stems[s.path.stem])!r} and {str(s.path)!r} would write the same output "
                             f"{s.path.stem!r}; run them into separate --out folders")
        stems[s.path.stem] = s.path
    return out


def resolve_model(model: str, *, arch: str = "", scale: int = 0,
                  runs_root: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model in eval mode, a record of where it came from) for MODEL = a run id or name, or a checkpoint file (a
    lab checkpoint or official weights; `arch` / `scale` where the keys do not tell)."""
    text = str(model).strip()
    path = Path(text).expanduser()
    if path.is_file():
        net, weights, _ = load_model(pretrained=str(path), model=arch, scale=scale)
        return net, {"model_source": "checkpoint", "weights": str(weights)}
    root = runs_dir(runs_root)
    if text and os.sep not in text and (text.isdigit() or (root / text).is_dir()):
        if arch or scale:
            raise ValueError(f"--arch/--scale apply to third-party weights, not to run {text!r} (it rebuilds its "
                             "own model)")
        net, weights, run = load_model(run=text, runs_root=root)
        return net, {"model_source": "run", "source_run": run.name if run else None, "weights": str(weights)}
    raise ValueError(f"unknown model {text!r}: not a run id or name in {root}, nor a checkpoint file; give e.g. 42, "
                     "model.pth (a lab checkpoint) or official weights (IMDN, IMDN-RTC, FSRCNN)")


def _pictures(sources: Sequence[Source], every: int, dedup: bool,
              dedup_threshold: float) -> Iterator[tuple[Source, str, int | None, np.ndarray]]:
    """(source, output name, frame index or None, HWC uint8 RGB picture) of every input picture and kept frame."""
    for s in sources:
        if s.video:
            for idx, frame in read_frames(s.path, every, dedup, dedup_threshold):
                yield s, f"{s.path.stem}_{idx:06d}", idx, frame
        else:
            yield s, s.path.stem, None, read_image(s.path)


def output_path(out: Path, source: Source, name: str) -> Path:
    """Where the output picture `name` of `source` goes: `<out>/<name>.png`, a video's frames in `<out>/<stem>/`."""
    return (out / source.path.stem / f"{name}.png") if source.video else out / f"{name}.png"


def _check_settings(size: tuple[int, int] | None, fit_mode: str, precision: str, post: Sequence[str],
                    tile: int) -> None:
    check_fit_mode(fit_mode)
    vocab.choose("precision", precision, PRECISIONS)
    bad = [p for p in post if p not in POST_OPS]
    if bad:
        raise ValueError(f"unknown post-processing op {bad[0]!r}; accepted: {', '.join(POST_OPS)}")
    if not isinstance(tile, int) or tile < 0:
        raise ValueError(f"tile={tile!r}: expected an LR tile side in px >= 0 (0: whole pictures)")


def run_inference(model: str, inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, size: str | None = None,
                  fit_mode: str = "pad", tile: int = 0, tile_overlap: int | str = "auto",
                  self_ensemble: bool = False, device: str = "auto", precision: str = "fp32",
                  post: Sequence[str] = (), every: int = 1, dedup: bool = False,
                  dedup_threshold: float = DEDUP_THRESHOLD, video_ext: str = ".mp4", arch: str = "", scale: int = 0,
                  name: str | None = None, runs_root: str | os.PathLike | None = None,
                  progress: bool = True) -> Run:
    """Run `model` over `inputs` into folder `out` as a recorded inference run (see the module doc); returns it.

    Bad settings, a missing input or an unknown model raise before any run is created; an error on the way marks
    the run failed (what was written stays, and a rerun skips it).
    """
    target = parse_size(size)
    post = [p.strip() for p in post if p.strip()]
    _check_settings(target, fit_mode, precision, post, tile)
    sources = collect_inputs(inputs)
    for s in sources[:1]:  # a size smaller than the input is refused before anything is recorded
        if target is not None:
            hw = (video_info(s.path).height, video_info(s.path).width) if s.video else read_image(s.path).shape[:2]
            check_not_smaller(hw, target, fit_mode)
    net, origin = resolve_model(model, arch=arch, scale=scale, runs_root=runs_root)
    dev = resolve_device(device)
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    model_scale = int(getattr(net, "scale", 1))
    params = {"kind": KIND, "model": getattr(net, "model_name", type(net).__name__),
              "model_kwargs": dict(getattr(net, "model_kwargs", {})), "model_arg": str(model), **origin,
              "data": ", ".join(str(Path(i)) for i in inputs), "inputs": [str(s.path) for s in sources],
              "out": str(out), "scale": model_scale, "size": f"{target[0]}x{target[1]}" if target else "",
              "fit": fit_mode if target else "", "resampling": RESAMPLING if target else "",
              "tile": tile, "tile_overlap": tile_overlap if tile else "", "self_ensemble": bool(self_ensemble),
              "device": str(dev), "precision": precision, "post": list(post), "every": every, "dedup": bool(dedup),
              "dedup_threshold": dedup_threshold if dedup else "", "threads": torch.get_num_threads()}
    run = create(params, name=name or f"infer-{params['model']}", root=runs_root, notebook="lab infer")
    print(f"{run.name}: {params['model']} x{model_scale} -> {describe(target, fit_mode, model_scale)}; "
          f"outputs in {out}")
    try:
        metrics = _infer_all(run, net, sources, out, target, fit_mode, dev, progress, video_ext,
                             dict(tile=tile or None, tile_overlap=tile_overlap, self_ensemble=self_ensemble,
                                  amp=None if precision == "fp32" else precision, post=post),
                             (every, dedup, dedup_threshold))
    except BaseException as e:
        run.fail(e, status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    run.finish(metrics)
    return run


def _infer_all(run: Run, net: torch.nn.Module, sources: Sequence[Source], out: Path, target: tuple[int, int] | None,
               fit_mode: str, dev: torch.device, progress: bool, video_ext: str, infer_kw: dict[str, Any],
               frames: tuple[int, bool, float]) -> dict[str, Any]:
    """The loop of `run_inference`: every picture inferred (or skipped), measured and recorded; the summary."""
    total = sum(1 if not s.video else max(1, video_info(s.path).frames // frames[0]) for s in sources)
    bar = progress_bar(range(total), leave=False) if progress else None
    if bar is not None:
        bar.update(0)  # starts its clock: updated by hand, not iterated
    records: list[dict[str, Any]] = []
    meters: dict[Path, FlickerMeter] = {}
    video_frames: dict[Path, list[tuple[int, Path]]] = {}
    t_start, t_model, done = time.perf_counter(), 0.0, 0
    for n, (s, name, idx, img) in enumerate(_pictures(sources, *frames)):
        dest = output_path(out, s, name)
        lr = uint8_to_tensor(img)
        if target is not None:
            check_not_smaller(img.shape[:2], target, fit_mode)
        rec: dict[str, Any] = {"image": name, "input": str(s.path), "frame": idx, "output": str(dest)}
        if dest.is_file():
            sr = read_image(dest)
            rec["skipped"] = True
        else:
            t0 = time.perf_counter()
            y = infer(net, lr, device=dev, progress=False, **infer_kw)
            y = fit(y.cpu(), target, fit_mode) if target is not None else y.cpu()
            t_model += time.perf_counter() - t0
            sr = tensor_to_uint8(y)
            write_image(dest, sr)
            done += 1
            rec.update(skipped=False, seconds=time.perf_counter() - t0)
        ref = bicubic_reference(lr, run.params)
        rec.update(height=sr.shape[0], width=sr.shape[1],
                   hf_vs_bicubic=float(hf_energy_ratio(uint8_to_tensor(sr), ref.clamp(0, 1))[0]))
        records.append(rec)
        if s.video:
            meters.setdefault(s.path, FlickerMeter()).add(img, sr)
            video_frames.setdefault(s.path, []).append((idx, dest))
        if bar is not None:
            bar.update(min(n + 1, total))
            elapsed = time.perf_counter() - t_start
            bar.comment = f"{done / elapsed:.2f} images/s" if done and elapsed > 0 else "skipping existing outputs"
    wall = time.perf_counter() - t_start
    run.save_eval_table(LABEL, records)
    metrics: dict[str, Any] = {
        "images": len(records), "written": done, "skipped": len(records) - done, "seconds": wall,
        "images_per_s": done / wall if done and wall > 0 else None,
        "model_images_per_s": done / t_model if done and t_model > 0 else None,
        "hf_vs_bicubic": float(np.mean([r["hf_vs_bicubic"] for r in records])), "out": str(out)}
    videos = []
    for path, meter in meters.items():
        info = video_info(path)
        dest = out / f"{path.stem}{video_ext}"
        write_video(video_frames[path], dest, info.fps, total=info.frames, progress=False)
        flick = meter.result() if meter.tone else None
        videos.append({"input": str(path), "output": str(dest), "fps": info.fps, "frames": info.frames,
                       "kept_frames": len(video_frames[path]), "audio": AUDIO_NOTE, **(flick or {})})
        print(f"{dest}: {len(video_frames[path])} frames super-resolved, {info.frames} written at {info.fps:g} fps"
              + (f", flicker {flick['flicker']:.3f}" if flick else "") + f"; {AUDIO_NOTE}")
    if videos:
        metrics["videos"] = videos
        flickers = [v["flicker"] for v in videos if "flicker" in v]
        if flickers:
            metrics["flicker"] = float(np.mean(flickers))
    return metrics
