"""Cost profile: parameter and FLOP counts against analytic values, scaling with area, layer table, budgets."""

from __future__ import annotations

import pytest
from torch import nn

from lab.models import create, fits_budget, layer_table, profile
from lab.models.profile import count_flops, format_profile, summary
from lab.vocab import UnknownName

SMALL = {"channels": [4, 8], "num_block": 1}


def _plain_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1))


def test_single_conv_flops_are_analytic():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    flops = count_flops(conv, (1, 3, 20, 24))
    assert flops == 2 * 3 * 8 * 3 * 3 * 20 * 24
    p = profile(conv, (1, 3, 20, 24), dtypes=("fp32",), repeats=1, warmup=0)
    assert p["gflops"] == pytest.approx(flops / 1e9)
    assert p["gmacs"] == pytest.approx(p["gflops"] / 2)


@pytest.mark.parametrize("name", ["resunet", "srn"])
def test_flops_scale_with_area(name):
    model = create(name, **SMALL)
    small, big = count_flops(model, (1, 3, 32, 32)), count_flops(model, (1, 3, 64, 64))
    assert big / small == pytest.approx(4.0, rel=0.05)


def test_profile_numbers():
    model = create("resunet", **SMALL)
    p = profile(model, (1, 3, 32, 32), dtypes=("fp32", "bf16"), repeats=2, warmup=1)
    assert p["params"] == sum(q.numel() for q in model.parameters())
    for dt in ("fp32", "bf16"):
        assert p[f"ms_{dt}"] > 0
        assert p[f"mem_mb_{dt}"] > 0
    text = format_profile(p)
    assert "GFLOPs" in text
    assert f"{p['params']:,}" in text


def test_cpu_peak_memory_counts_activations():
    net = _plain_net()
    p1 = profile(net, (1, 3, 32, 32), dtypes=("fp32",), repeats=1, warmup=0)
    p2 = profile(net, (1, 3, 64, 64), dtypes=("fp32",), repeats=1, warmup=0)
    one_map_mb = 16 * 64 * 64 * 4 / 2**20  # the 16-channel activation must be alive at some point
    assert p2["mem_mb_fp32"] >= one_map_mb
    assert p2["mem_mb_fp32"] / p1["mem_mb_fp32"] == pytest.approx(4.0, rel=0.05)


def test_profile_rejects_bad_arguments():
    with pytest.raises(UnknownName, match="unknown dtype 'int8'; known dtypes: fp32, bf16, fp16"):
        profile(_plain_net(), (1, 3, 8, 8), dtypes=("int8",))
    with pytest.raises(ValueError, match="input_size"):
        profile(_plain_net(), (3, 8, 8))


def test_layer_table_sums_to_params_with_shared_weights():
    model = create("srn", **SMALL)  # the encoder-decoder runs once per scale with the same weights
    table = layer_table(model, (1, 3, 32, 32))
    assert table["params"].sum() == sum(p.numel() for p in model.parameters())
    head = table[table["layer"] == "net.head.0"]
    assert list(head["call"]) == [1, 2, 3]
    assert head["params"].iloc[1:].sum() == 0
    assert list(head["output_shape"]) == [(1, 4, 8, 8), (1, 4, 16, 16), (1, 4, 32, 32)]
    assert head["act_mb"].iloc[-1] == pytest.approx(4 * 32 * 32 * 4 / 2**20)


class _WithSpare(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.spare = _plain_net(), nn.Linear(4, 4)  # `spare` is never called

    def forward(self, x):
        return self.body(x)


def test_layer_table_lists_unused_modules():
    net = _WithSpare()
    table = layer_table(net, (1, 3, 8, 8))
    assert table["params"].sum() == sum(p.numel() for p in net.parameters())
    assert table.loc[table["layer"] == "spare", "call"].item() == 0


def test_summary_text():
    text = summary(_plain_net(), (1, 3, 16, 16), dtypes=("fp32",), repeats=1, warmup=0)
    assert "Conv2d" in text
    assert "GMACs" in text


def test_fits_budget_both_sides():
    model = create("resunet", **SMALL)
    g = count_flops(model, (1, 3, 32, 32)) / 1e9
    n = sum(p.numel() for p in model.parameters())
    ok, numbers = fits_budget(model, (1, 3, 32, 32), max_gflops=g * 1.01, max_params=n)
    assert ok
    assert numbers["gflops"] == pytest.approx(g)
    assert numbers["params"] == n
    res = fits_budget(model, (1, 3, 32, 32), max_gflops=g * 0.99, max_params=n + 1)
    assert not res.ok
    assert res.failed == ["gflops"]
    assert "over budget" in repr(res)
    assert not fits_budget(model, (1, 3, 32, 32), max_params=n - 1)
    assert fits_budget(model, (1, 3, 32, 32), max_ms=1e6, repeats=1, warmup=0).ok
    assert not fits_budget(model, (1, 3, 32, 32), max_ms=1e-6, repeats=1, warmup=0).ok
    with pytest.raises(ValueError, match="max_gflops"):
        fits_budget(model, (1, 3, 32, 32))


def _spin(seconds: float) -> None:
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_timing_beside_a_foreign_process_is_flagged_busy(tmp_path):
    import os
    import subprocess
    import sys
    import time

    import torch

    from lab import evaluate, runs

    with evaluate.OtherCPU() as own:
        _spin(0.4)  # this process's own CPU is not another's
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # the timing takes every core: the hog competes with it
    try:
        time.sleep(0.3)
        with evaluate.OtherCPU() as beside:
            _spin(0.4)
        run = runs.create({}, root=tmp_path, name="timed")
        prof = evaluate.record_profile(run, create("edsr_baseline", scale=2, num_block=2, num_feat=16), 48,
                                       repeats=5, warmup=1)
    finally:
        torch.set_num_threads(threads)
        hog.kill()
        hog.wait()
    assert beside.cores > own.cores + 0.4, (own.cores, beside.cores)
    assert prof["other_cpu_cores"] >= evaluate.BUSY_CORES, prof
    assert prof["other_runs_active"] == []
    assert prof["busy"], "flagged by the foreign process alone"
    assert run.read("profile")["busy"], "recorded as busy"
