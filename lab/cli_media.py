"""The `lab` commands for real pictures: infer, compare, data frames, kernel-bank, export-model.

Each command imports what it needs when it runs (lazy), as `lab.cli` does, so `lab ledger` starts without torch.
"""

from __future__ import annotations

import argparse


def data_frames(a: argparse.Namespace) -> int:
    """`lab data frames VIDEO DIR`: a video's frames as a training folder."""
    from lab.video import AUDIO_NOTE, extract_frames  # lazy

    if not (a.folder and a.out):
        raise ValueError("lab data frames needs a video and an output folder: lab data frames episode.mkv data/ep01 "
                         "--every 2 --dedup")
    got = extract_frames(a.folder, a.out, every=a.every, dedup=a.dedup, progress=not a.no_progress)
    print(f"{a.folder}: {got['frames']} of {got['source']} frames kept ({got['written']} written now) in {a.out}; "
          f"{AUDIO_NOTE}; train with -p data {a.out}")
    return 0


def cmd_infer(a: argparse.Namespace) -> int:
    """`lab infer MODEL INPUT... --out DIR`."""
    from lab.inference import run_inference  # lazy

    overlap = a.tile_overlap if a.tile_overlap == "auto" else int(a.tile_overlap)
    run = run_inference(a.model, a.inputs, a.out, size=a.size, fit_mode=a.fit, tile=a.tile, tile_overlap=overlap,
                        self_ensemble=a.self_ensemble, device=a.device, precision=a.precision,
                        post=a.post.split(",") if a.post else (), every=a.every, dedup=a.dedup, arch=a.arch,
                        scale=a.scale, name=a.name, runs_root=a.runs, progress=not a.no_progress,
                        video_ext=a.video_ext)
    m = run.metrics
    rate = f", {m['images_per_s']:.2f} images/s" if m.get("images_per_s") else ""
    print(f"{run.name}: {m['written']} written, {m['skipped']} skipped (already there){rate}; high-frequency energy "
          f"{m['hf_vs_bicubic']:.2f}x bicubic's" + (f"; flicker {m['flicker']:.3f}" if "flicker" in m else ""))
    return 0


def cmd_export_model(a: argparse.Namespace) -> int:
    """`lab export-model MODEL --onnx FILE --torchscript FILE`."""
    from lab.export import export_onnx, export_torchscript, onnx_available  # lazy
    from lab.inference import resolve_model  # lazy
    from lab.sizing import parse_size  # lazy

    if not (a.onnx or a.torchscript):
        raise ValueError("nothing to write: give --onnx FILE and/or --torchscript FILE")
    if a.onnx and onnx_available():
        raise ValueError(f"--onnx: {onnx_available()}")
    net, origin = resolve_model(a.model, arch=a.arch, scale=a.scale, runs_root=a.runs)
    fixed = parse_size(a.fixed_size)
    hw = (fixed[1], fixed[0]) if fixed else None
    for flag, fn, fmt in ((a.onnx, export_onnx, "ONNX"), (a.torchscript, export_torchscript, "TorchScript")):
        if flag:
            got = fn(net, flag, fixed_hw=hw)
            shape = f"fixed input {fixed[0]}x{fixed[1]}" if fixed else "dynamic height and width"
            print(f"{fmt}: {got['path']} ({getattr(net, 'model_name', '?')} from {origin['weights']}, {shape}, "
                  f"{getattr(net, 'in_ch', 3)}-channel input in [0, 1]); max |export - PyTorch| "
                  f"{got['max_abs_diff']:.1e}")
    return 0


def _add_export_model(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export-model", help="write a model as ONNX (dynamic H/W) and/or TorchScript, checked "
                       "against PyTorch")
    e.add_argument("model", help="a run id or name, a lab checkpoint, or official weights")
    e.add_argument("--onnx", help="the .onnx file to write (needs onnx and onnxruntime: pip install '.[export]')")
    e.add_argument("--torchscript", help="the TorchScript .pt file to write")
    e.add_argument("--fixed-size", help="export for this one LR input size WIDTHxHEIGHT (SRCNN and VDSR, which "
                   "upscale inside forward, export only so)")
    e.add_argument("--arch", default="", help="the architecture of third-party weights, when the keys do not tell")
    e.add_argument("--scale", type=int, default=0, help="the scale of third-party weights, when they do not tell")
    e.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    e.set_defaults(fn=cmd_export_model)


def _add_infer(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("infer", help="run a model over pictures, folders or videos (no ground truth) as a recorded run")
    i.add_argument("model", help="a run id or name, a lab checkpoint, or official weights (IMDN, IMDN-RTC, FSRCNN)")
    i.add_argument("inputs", nargs="+", help="pictures, folders of pictures, or videos")
    i.add_argument("--out", required=True, help="output folder (existing outputs are skipped: resumable)")
    i.add_argument("--size", help="fit the output to WIDTHxHEIGHT (e.g. 1920x1080) after the model's scale, "
                   "bicubic (MATLAB, antialiased); default: the model's scale")
    i.add_argument("--fit", default="pad", choices=("pad", "crop", "stretch"), help="with --size: keep the aspect and "
                   "pad (letterbox, default) or crop the overflow, or stretch each axis")
    i.add_argument("--tile", type=int, default=0, help="tiled inference with this LR tile side (default 0: whole "
                   "pictures)")
    i.add_argument("--tile-overlap", default="auto", help="LR px of context per tile side (default auto: the "
                   "model's receptive field, so tiles equal untiled inference)")
    i.add_argument("--self-ensemble", action="store_true", help="x8 geometric self-ensemble (8x slower)")
    i.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu, cuda or cuda:N")
    i.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (autocast)")
    i.add_argument("--post", help="post-processing ops in order, comma-separated: nlm, autocontrast, dither")
    i.add_argument("--every", type=int, default=1, help="videos: every N-th frame")
    i.add_argument("--dedup", action="store_true", help="videos: drop near-duplicate frames (held drawings); the "
                   "written video repeats the previous output in their place")
    i.add_argument("--video-ext", default=".mp4", help="container of the written video (.mp4, .avi, ...)")
    i.add_argument("--arch", default="", help="the registered architecture of third-party weights, when the keys "
                   "do not tell")
    i.add_argument("--scale", type=int, default=0, help="the scale of third-party weights, when they do not tell")
    i.add_argument("--name", help="run title (default: infer-<model>)")
    i.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    i.add_argument("--no-progress", action="store_true", help="no progress bar")
    i.set_defaults(fn=cmd_infer)


def cmd_kernel_bank(a: argparse.Namespace) -> int:
    """`lab kernel-bank FOLDER OUT`: blur kernels estimated from real pictures; `--measure`: the estimator's error."""
    import pandas as pd  # lazy: the read side's dependency only

    from lab.kernel_estimate import build_bank, measure_builtin  # lazy

    if a.measure:
        df = pd.DataFrame(measure_builtin())
        cols = ["estimate", "bank_random", "bank_nearest"]
        table = pd.concat([df.groupby("family")[cols].mean(), df[cols].mean().to_frame("all").T])
        print("kernel error (sum of |k - k_true|, 0 equal, 2 disjoint) on built-in photos blurred with known "
              "kernels:\n" + table.round(3).to_string())
        return 0
    if not (a.folder and a.out):
        raise ValueError("lab kernel-bank needs a folder of real pictures and an output folder: lab kernel-bank "
                         "frames/ data/kernels --scale 2 (or --measure)")
    rec = build_bank(a.folder, a.out, size=a.size, scale=a.scale, progress=not a.no_progress)
    print(f"{len(rec['kernels'])} kernels ({a.size}x{a.size}, for x{a.scale}) -> {a.out}"
          + (f"; skipped {len(rec['skipped'])}: {next(iter(rec['skipped'].values()))}" if rec["skipped"] else ""))
    print(f"use it with: -p degradation realsr -p degradation_kwargs '{{kernel_bank: {a.out}, noise_bank: <bank>}}'")
    return 0


def cmd_noise_bank(a: argparse.Namespace) -> int:
    """`lab noise-bank SOURCE OUT`: real-noise patches, two-stage, with the thresholds given."""
    from pathlib import Path  # lazy

    from lab.images import read_image  # lazy
    from lab.noise_bank import extract_noise_patches  # lazy

    src = read_image(a.source) if Path(a.source).is_file() else a.source
    bank = extract_noise_patches(src, patch=a.patch, max_patches=a.max_patches, denoise=a.denoise,
                                 denoise_sigma=a.denoise_sigma, median_size=a.median_size, nlm_h=a.nlm_h,
                                 stride=a.stride, flat_quantile=a.flat_quantile, max_flat_std=a.max_flat_std,
                                 max_grad_corr=a.max_grad_corr, max_var_ratio=a.max_var_ratio,
                                 bias_correct=not a.no_bias_correct)
    path = bank.save(a.out)
    print(f"{len(bank)} noise patches of {bank.patch_size}px (std {bank.std():.4f} in [0, 1] units) -> {path}")
    print(f"use it with: -p degradation realsr -p degradation_kwargs '{{noise_bank: {path}, kernel_bank: <folder>}}'")
    return 0


def _add_noise_bank(sub: argparse._SubParsersAction) -> None:
    nb = sub.add_parser("noise-bank",
                        help="extract real-noise patches from photos (flat regions, two-stage) into a bank")
    nb.add_argument("source", help="a folder of real photos (or one image file)")
    nb.add_argument("out", help="the bank file to write (.npz)")
    nb.add_argument("--patch", type=int, default=32, help="patch side in pixels")
    nb.add_argument("--max-patches", type=int, help="keep at most this many (the flattest)")
    nb.add_argument("--denoise", default="gaussian", help="stage 1 denoiser: gaussian, median or nlm")
    nb.add_argument("--denoise-sigma", type=float, default=2.0, help="gaussian: filter sigma in px")
    nb.add_argument("--median-size", type=int, default=5, help="median: window side (3 or 5)")
    nb.add_argument("--nlm-h", type=float, default=5.0, help="nlm: strength in 0-255 units")
    nb.add_argument("--stride", type=int, help="step between candidate windows in px (default: the patch side)")
    nb.add_argument("--flat-quantile", type=float, default=0.25, help="keep the flattest fraction of windows")
    nb.add_argument("--max-flat-std", type=float, help="and only windows whose denoised std is at most this (0-1)")
    nb.add_argument("--max-grad-corr", type=float, default=0.3, help="stage 2: drop a residual whose energy "
                    "correlates with the image gradient beyond this")
    nb.add_argument("--max-var-ratio", type=float, default=3.0, help="stage 2: drop a residual whose quadrant "
                    "variances differ by more than this ratio")
    nb.add_argument("--no-bias-correct", action="store_true", help="gaussian: keep the residual's white-noise "
                    "under-report uncorrected")
    nb.set_defaults(fn=cmd_noise_bank)


def _add_kernel_bank(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("kernel-bank", help="estimate a blur kernel per real picture into a bank the realsr preset "
                       "reads (--measure: the estimator's error on built-in photos)")
    k.add_argument("folder", nargs="?", help="a folder of real pictures (e.g. frames from lab data frames)")
    k.add_argument("out", nargs="?", help="the bank folder to write (<picture>.npy + kernels.json)")
    k.add_argument("--size", type=int, default=15, help="kernel side in px (odd)")
    k.add_argument("--scale", type=int, default=1, help="the SR scale the bank is for: kernels are for HR images this "
                   "many times larger (realsr blurs the HR, then strides down)")
    k.add_argument("--measure", action="store_true", help="print the estimator's error beside the built-in bank's")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    k.set_defaults(fn=cmd_kernel_bank)


def cmd_compare(a: argparse.Namespace) -> int:
    """`lab compare A B ...`: grid PNGs of inference runs on the same crops, bicubic as the reference."""
    import pandas as pd  # lazy: the read side's dependency only

    from lab.compare import compare_runs  # lazy

    box = None
    if a.box:
        try:
            box = tuple(int(v) for v in a.box.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise ValueError(f"--box {a.box!r}: expected y,x,height,width in output pixels, e.g. 100,200,96,96")
    out = a.out or f"compare-{'-'.join(map(str, a.runs_ids))}"
    paths, table = compare_runs(a.runs_ids, out, box=box, side=a.side, images=a.image or (), runs_root=a.runs)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.precision", 3):
        print(table.drop(columns=["out"]).to_string(index=False))
    print(f"{len(paths)} grid(s) in {out} (bicubic of the input as the reference; HF: high-frequency energy of the "
          "crop over bicubic's); the ledger notebook's swipe opens the same runs with eval_set='infer'")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="grids of two or more inference runs on the same crops (no ground truth: "
                       "bicubic as the reference, a sharpness measure beside)")
    c.add_argument("runs_ids", nargs="+", metavar="RUN", help="inference run ids or names (lab infer)")
    c.add_argument("--out", help="folder of the PNGs (default: compare-<ids>)")
    c.add_argument("--box", help="the crop, y,x,height,width in output px (default: the most detailed window)")
    c.add_argument("--side", type=int, default=96, help="side of the default crop in output px")
    c.add_argument("--image", action="append", help="only this picture (repeatable; default: every shared one)")
    c.add_argument("--runs", help="runs directory (default: $LAB_RUNS_DIR or runs/)")
    c.set_defaults(fn=cmd_compare)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `lab` parser."""
    _add_compare(sub)
    _add_noise_bank(sub)
    _add_kernel_bank(sub)
    _add_infer(sub)
    _add_export_model(sub)
