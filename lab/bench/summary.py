"""The summary table of `lab bench`: one function per section turning its result into rows (goal, measured,
target, met), looked up in `ROWS`; a section that failed is one row with its error, an extra without rows of its
own shows only then."""

from __future__ import annotations

from typing import Any, Callable

Row = dict[str, str]


def row(goal: str, measured: str, target: str = "", met: str = "") -> Row:
    """One row of the summary table."""
    return {"goal": goal, "measured": measured, "target": target, "met": met}


def ok(value: float | None, target: float, higher: bool = True) -> str:
    """'yes' / 'no' whether `value` meets `target` ('?' when it was not measured)."""
    if value is None or value != value:
        return "?"
    return "yes" if (value >= target if higher else value <= target) else "no"


def _p1(res: list[dict[str, Any]]) -> list[Row]:
    out = []
    for r in res:
        goal = f"P1 Learner / hand loop, {r['amp']}"
        if "skipped" in r:
            out.append(row(goal, f"skipped: {r['skipped']}", ">= 0.95", "-"))
            continue
        out.append(row(goal, f"{r['ratio']:.3f} steps/s ratio (quartiles {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}, "
                             f"{r['rounds']} rounds of {r['block']} steps; {r['learner_steps_s']:.2f} vs "
                             f"{r['hand_steps_s']:.2f} steps/s; losses agree to {r['loss_rel_diff_max']:.1e}; the "
                             f"Learner's own cost {r['overhead_ms']:.1f} ms/step = {r['overhead_share']:.1%} of a step)",
                       ">= 0.95", ok(r["ratio"], 0.95)))
    return out


def _p2(res: dict[str, Any]) -> list[Row]:
    b = res["fp32_breakdown"]
    out = [row("P2 fp32 step GFLOP/s / conv peak",
               f"{res['fp32_fraction_of_peak']:.0%} ({res['fp32_gflops_s']:.1f} of {res['fp32_conv_peak_gflops_s']:.1f} "
               f"GFLOP/s, the faster of a large conv ({res['fp32_conv_large_gflops_s']:.0f}) and the step's conv shape "
               f"({res['fp32_conv_step_gflops_s']:.0f}) alone; convs {b['conv_share']:.0%} of the step: forward at "
               f"{b['conv_fwd_gflops_s']:.1f}, backward at {b['conv_bwd_gflops_s']:.1f} GFLOP/s)", ">= 60 %",
               ok(res["fp32_fraction_of_peak"], 0.6))]
    if "bf16_speedup" in res:
        out.append(row("P2 bf16 / fp32 steps/s", f"{res['bf16_speedup']:.2f}x ({res['bf16_fraction_of_peak']:.0%} of "
                       "the bf16 conv peak)", ">= 2x", ok(res["bf16_speedup"], 2.0)))
    else:
        out.append(row("P2 bf16 / fp32 steps/s", f"skipped: {res['bf16_skipped']}", ">= 2x", "-"))
    return out


def _p3(res: list[dict[str, Any]]) -> list[Row]:
    return [row(f"P3 data wait / step, {r['preset']}, {r['workers']} workers",
                f"{r['data_fraction_of_step']:.1%} ({r['data_wait_ms']:.0f} ms wait, {r['step_ms']:.0f} ms step, "
                f"step x{r['step_slowdown']:.2f} of alone)") for r in res if "data_fraction_of_step" in r] + \
        [row(f"P3 feed, {r['preset']}, " + (f"in the loader, {r['workers']} workers" if r["degrade_on"] == "loader"
                                            else f"batched on {r.get('device', 'the device')}"),
             f"{r['patches_per_s']:.0f} patches/s ({r['batch']} x {r['patch']} px)" if "patches_per_s" in r else
             f"not measured: {r.get('error', '')[:80]}") for r in res if "degrade_on" in r]


def _p4(res: dict[str, Any]) -> list[Row]:
    if res.get("status") != "done":
        return [row("P4 demo quality per minute", f"run {res.get('status')}: {res.get('error', '')}", ">= 37.5 dB",
                    "?")]
    budget = (f"; of its {res['time_budget']:g} min budget, validating took {res['valid_minutes']:.1f}"
              if res.get("time_budget") else "")
    met = ("- (a --quick budget)" if res.get("quick") else
           ok(res["final_psnr_y"], 37.5) if res["train_minutes"] <= 10 else "no")
    return [row(f"P4 demo PSNR-Y, {res['scored_on'].split(' (')[0]}",
                f"{res['final_psnr_y']:.2f} dB after {res['train_minutes']:.1f} min, {res['steps']} steps (bicubic "
                f"{res['bicubic_psnr_y']:.2f}, {res['gain_db']:+.2f} dB{budget}); curve {res['png']}",
                ">= 37.5 dB in 10 min", met)]


def _p5_times(r: dict[str, Any]) -> str:
    times = "; ".join(f"tile {t['tile']}: {t['frame_seconds']:.0f} s{'*' if t['frame_seconds_estimated'] else ''}, "
                      f"{t['peak_mb'] or float('nan'):.0f} MB" for t in r["tiles"])
    skipped = sorted(r.get("tiles_not_timed", {}).items(), key=lambda kv: int(kv[0]))
    left = "; ".join(f"tile {t}: not timed ({why})" for t, why in skipped)
    if not times:
        return f"not timed ({left or r['tiled_on']}); untiled {r['untiled_s_per_mpx']:.1f} s/Mpx"
    estimated = " (* extrapolated from " + r["tiled_on"].split(";")[0] + ")" if "extrapolated" in r["tiled_on"] else ""
    return times + estimated + (f"; {left}" if left else "")


def _p5(res: list[dict[str, Any]]) -> list[Row]:
    out = []
    for r in res:
        c = r["compare"]
        out.append(row(f"P5 tiled = untiled, {r['model']}",
                       f"max |diff| {c['max_abs_diff']:.1e}, {c['pixels_differing_8bit']} of {c['output_pixels']:,} px "
                       f"differ in 8 bit (by up to {c['max_8bit_levels']} level; {c['tiles']} tiles of {c['tile']} px, "
                       f"context {r['receptive_field_px']} px; {r['compared_on']})", "<= 1e-4, 0 px",
                       "yes" if c["max_abs_diff"] <= 1e-4 and c["pixels_differing_8bit"] == 0 else "no"))
        out.append(row(f"P5 {r['frame']} x2 time, peak memory, {r['model']}", _p5_times(r)))
    return out


def _p6(res: dict[str, Any]) -> list[Row]:
    lg, pm_ = res["ledger"], res["papermill"]
    return [row(f"P6 ledger load, {lg['runs']:,} runs", f"{lg['warm_s']:.2f} s warm (cache), {lg['first_s']:.2f} s "
                f"first (summaries, no cache; {lg['fresh_s']:.2f} s in a new process), {lg['old_s']:.2f} s the reader "
                f"before summaries "
                f"({lg['kb_per_run']:.0f} KB, {lg['epochs_per_run']} epochs per run; same rows: "
                f"{lg['same_as_old']})"),
            row("P6 papermill overhead per run", f"{pm_['to_first_cell_s']:.1f} s to the first cell, "
                f"{pm_['one_cell_run_s']:.1f} s for a one-cell notebook")]


def _levers(res: dict[str, Any]) -> list[Row]:
    return [row(f"levers: the demo's step ({res['amp']}, {res['batch']} x {res['patch']} px)",
                f"channels_last {res['channels_last_speedup']:.2f}x, torch.compile ({res['backend']}) "
                f"{res['compiled_speedup']:.2f}x the eager steps/s (compiling took {res['compile_s']:.0f} s; "
                f"eager {res['eager_step_ms']:.0f} ms/step, {res['rounds']} rounds)")]


def _export(res: dict[str, Any]) -> list[Row]:
    goal = f"export: {res.get('model', 'model')} x2 ONNX (onnxruntime) vs PyTorch"
    if "skipped" in res:
        return [row(goal, f"skipped: {res['skipped']}", "<= 1e-4", "-")]
    return [row(goal, f"{res['onnxruntime_images_s']:.2f} vs {res['pytorch_images_s']:.2f} images/s at {res['input']} "
                f"({res['rounds']} rounds); max |diff| {res['max_abs_diff']:.1e}", "<= 1e-4",
                ok(res["max_abs_diff"], 1e-4, higher=False))]


ROWS: dict[str, Callable[[Any], list[Row]]] = {"P1": _p1, "P2": _p2, "P3": _p3, "P4": _p4, "P5": _p5, "P6": _p6,
                                                "levers": _levers, "export": _export}


def summarise(name: str, res: Any) -> list[Row]:
    """The summary-table rows of one section's result (goal, measured, target, met)."""
    if isinstance(res, dict) and "error" in res and len(res) <= 2:
        return [row(name, f"failed: {res['error']}", "", "?")]
    return ROWS[name](res) if name in ROWS else []
