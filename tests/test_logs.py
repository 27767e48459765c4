"""The lab against our users' logs (../shared/seeds): quotes are verbatim, and every model a log gives a parameter
count (and FLOPs) for is rebuilt with that count, or the test names the difference and why.

Log 003's FLOPs come from its course's checker at a 1 x 3 x 256 x 256 LR input at x3 (IMDN-RTC's line, 21,825
params and 2.820538368 G, is reproduced exactly there and nowhere else). That checker counts a multiply-add as
2 FLOPs like the lab's profiler, and also counts what the lab's does not: 2 C (H W + 1) per global average
pooling (IMDN's CCA, DRLN's Laplacian attention) and the official DRLN code's two mean-shift 1x1 convs (3 -> 3,
12 params each, frozen; the lab subtracts the mean with a buffer). The tests below add those terms by name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
import yaml

from lab import models
from lab.models.profile import count_flops, count_params
from lab.utils import PROJECT_ROOT, reference_data_dir

SWEEPS = PROJECT_ROOT / "notebooks" / "sweeps"
DOCS = PROJECT_ROOT / "docs" / "logs.md"
HW = 256 * 256  # log 003's input: 256 x 256 LR pixels


def _seeds_dir() -> Path | None:
    env = os.environ.get("LAB_SEEDS")
    ref = reference_data_dir()
    for c in [Path(env)] if env else []:
        if c.is_dir():
            return c
    for c in (PROJECT_ROOT.parent / "shared" / "seeds", ref.parent / "seeds" if ref else None):
        if c is not None and c.is_dir():
            return c
    return None


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def logs() -> dict[str, str]:
    """The five logs by their number ('000' ...), whitespace collapsed; skip when they are not beside the repo."""
    d = _seeds_dir()
    if d is None:
        pytest.skip("the users' logs are not found: set LAB_SEEDS or place them at ../shared/seeds beside the repo")
    return {p.name[:3]: _norm(p.read_text(encoding="utf-8")) for p in sorted(d.glob("0*.txt"))}


QUOTE = re.compile(r'"([^"]+)"|“([^”]+)”')


def _comment_blocks(text: str) -> list[str]:
    """Runs of full-line YAML comments joined into one text each (a quote may span lines), plus trailing comments."""
    blocks, cur = [], []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            cur.append(s.lstrip("#").strip())
            continue
        if cur:
            blocks.append(" ".join(cur))
            cur = []
        if " #" in line and line.split(" #", 1)[0].count('"') % 2 == 0:
            blocks.append(line.split(" #", 1)[1])
    if cur:
        blocks.append(" ".join(cur))
    return blocks


def _strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in _strings(k) + _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def _quotes(texts: list[str]) -> list[str]:
    return [_norm(a or b) for t in texts for a, b in QUOTE.findall(t)]


SPECS = sorted(p for p in SWEEPS.glob("*.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_quote_in_a_spec_is_verbatim_in_the_logs(spec, logs):
    text = spec.read_text(encoding="utf-8")
    spans = _quotes(_comment_blocks(text) + _strings(yaml.safe_load(text)))
    invented = [q for q in spans if not any(q in log for log in logs.values())]
    assert not invented, f"{spec.name} quotes text that is in no log: {invented}"


def test_every_quote_in_the_logs_table_is_verbatim(logs):
    if not DOCS.is_file():
        pytest.skip("docs/logs.md is not in this checkout")
    text = re.sub(r"`[^`]*`", "", DOCS.read_text(encoding="utf-8"))  # code spans are commands, not quotes
    invented = [q for q in _quotes([text]) if not any(q in log for log in logs.values())]
    assert not invented, f"docs/logs.md quotes text that is in no log: {invented}"


@pytest.mark.parametrize("spec", [p for p in SPECS if "study:" in p.read_text(encoding="utf-8")],
                         ids=lambda p: p.stem)
def test_every_study_names_its_source_log_and_entry_or_says_no_log_asks(spec):
    st = yaml.safe_load(spec.read_text(encoding="utf-8"))["study"]
    src = " ".join(st["log"].split())
    assert re.search(r"\b00[0-4]\b", src) or "no log" in src, f"{spec.name}: log field {src!r} cites no seed file"


def test_the_quote_check_catches_an_invented_quote(logs):
    spans = _quotes(_comment_blocks('# From the log: "BN gave colour shifts"\nbase: {a: 1}\n'))
    assert spans == ["BN gave colour shifts"]
    assert not any(spans[0] in log for log in logs.values())


# ---------------------------------------------------------------------------------------------- log 002


def _n(name: str, **kw) -> int:
    with torch.device("meta"):
        return count_params(models.create(name, **kw))


def test_002_srcnn_57281():
    assert _n("srcnn", scale=2) == 57_281  # 002, SRCNN table: "Total params: 57,281"


def test_002_fsrcnn_12809_on_the_upscaled_input():
    m = models.create("fsrcnn_pre", scale=2)  # 002 FSRCNN: "ConvTranspose2d没有加stride"
    assert count_params(m) == 12_809
    assert m.last_part.stride == (1, 1)
    assert m(torch.rand(1, 1, 7, 5)).shape == (1, 1, 14, 10)  # every layer at the HR size, as the log's table


def test_002_fsrcnn_instance_norm_variant_15809():
    # 002 归一化比较: d = 64, s = 32, four 1x1 mapping convs each followed by InstanceNorm2d (affine) and PReLU
    assert _n("fsrcnn_pre", num_feat=64, shrink=32, map_kernel=1, norm="instance") == 15_809


def test_002_fsrcnn_wider_48321():
    assert _n("fsrcnn_pre", num_feat=64, shrink=32) == 48_321  # 002 FSRCNN微调: d = 64, s = 32, 3x3 mapping


SRRESNET_002 = {"scale": 4, "act": "leakyrelu", "block_bias": False, "body_bias": True, "up_bias": False}


def test_002_srresnet_with_instance_norm_1546883():
    assert _n("srresnet", norm="instance", **SRRESNET_002) == 1_546_883


def test_002_srresnet_without_norm_1542659():
    assert _n("srresnet", norm="none", **SRRESNET_002) == 1_542_659


def test_002_srresnet_instance_norm_between_distant_layers_only_1542787():
    m = models.create("srresnet", norm="instance", block_norm=False, **SRRESNET_002)
    assert count_params(m) == 1_542_787
    assert sum(isinstance(x, torch.nn.InstanceNorm2d) for x in m.modules()) == 1  # after the body's last conv


# ---------------------------------------------------------------------------------------------- log 003


def _cost(name: str, **kw) -> tuple[int, int]:
    with torch.device("meta"):
        m = models.create(name, scale=3, **kw).eval()
    return count_params(m), count_flops(m, (1, 3, 256, 256), device="meta")


def _pooling(channels: int, count: int) -> int:
    """What the course's checker adds for `count` global average poolings over `channels` channels."""
    return count * 2 * channels * (HW + 1)


MEAN_SHIFT_PARAMS = 2 * 12  # the official DRLN's sub_mean and add_mean: 1x1 convs 3 -> 3 with bias
MEAN_SHIFT_FLOPS = 2 * 9 * HW + 2 * 9 * 9 * HW  # sub_mean on the LR input, add_mean on the x3 output


def test_003_imdn_rtc_21825_and_2_820538368_g():
    assert _cost("imdn_rtc") == (21_825, 2_820_538_368)  # no pooling in the RTC blocks: exact


def test_003_imdn_703059_and_91_502942976_g():
    params, flops = _cost("imdn")
    assert params == 703_059
    assert flops + _pooling(64, 6) == 91_502_942_976  # the CCA of 6 blocks


def test_003_imdn_20_channels_72813_and_9_43325256_g():
    params, flops = _cost("imdn", num_feat=20)  # 003 "4th使用IMDN嘗試改良": 20 channels, 6 modules, CCA
    assert params == 72_813
    assert flops + _pooling(20, 6) == 9_433_252_560


def test_003_imdn_rtc_16_channels_10_modules_69795():
    params, flops = _cost("imdn_rtc", num_feat=16, num_block=10)  # 003 "3rd 嘗試改良"
    assert params == 69_795
    # The log prints "9.0513088032 G", which is 9,051,308,803.2 FLOPs: not a whole number, so not a count as
    # printed; with one '8' fewer it is the lab's count to the last digit.
    assert flops == 9_051_308_032


def test_003_drln_full_34614795_and_4499_812678144_g():
    params, flops = _cost("drln")
    assert params + MEAN_SHIFT_PARAMS == 34_614_795
    assert flops + _pooling(64, 20) + MEAN_SHIFT_FLOPS == 4_499_812_678_144


def test_003_first_slim_drln_82599_and_10_767045792_g():
    params, flops = _cost("drln_slim_003")  # 12 channels, 4 DRLMs of 2 units (2 groups of 2), reduction 16
    assert params + MEAN_SHIFT_PARAMS == 82_599
    assert flops + _pooling(12, 4) + MEAN_SHIFT_FLOPS == 10_767_045_792


@pytest.mark.parametrize("kw,log_params,log_flops", [
    ({}, 81_345, 10_215_758_400),  # 003 "1st嘗試使用depthwise convolution": 40 channels x 6
    ({"num_feat": 32, "num_block": 10}, 79_999, 9_984_547_072),  # 003 "3rd嘗試": 32 channels x 10
])
def test_003_depthwise_imdn_differs_by_2c_per_module(kw, log_params, log_flops):
    """Not reproduced exactly. The log describes its IMDModule_dw in words only (depthwise-separable convs for the
    3x3 convs inside the module, CCA kept, residual link); the lab builds that, with IMDN's standard LR conv. Both
    of the log's depthwise models then count 2 C more parameters and 2 C more multiply-adds per pixel per module
    than the lab's (a per-module layer the text does not show), and a few FLOPs on the pooled 1 x 1 maps (320 per
    module at 32 channels, 720 at 40); the 40-channel one also 81 parameters more per module. The test pins those
    gaps so a change to either side shows."""
    params, flops = _cost("imdn_dw_003", **kw)
    c, blocks = kw.get("num_feat", 40), kw.get("num_block", 6)
    extra_p, extra_const = (81, 720) if c == 40 else (0, 320)
    assert log_params - params == blocks * (2 * c + extra_p)
    assert log_flops - flops - _pooling(c, blocks) == blocks * (2 * 2 * c * HW + extra_const)


def test_003_the_lightweight_study_draws_the_budget_at_the_logs_measure(tmp_path):
    from lab import studies
    from lab.studies.budget import budget_table

    jobs = studies.plan("lightweight", root=tmp_path)
    table = budget_table(jobs, studies.load_study("lightweight")).set_index("arm")
    assert "256 x 256 LR input, x3" in table.attrs["line"]
    assert table.loc["imdn_rtc (12)", "gflops"] == "2.820538368"  # 003's own line for IMDN_RTC
    assert table.loc["imdn_rtc (12)", "params"] == 21_825
    assert bool(table.loc["imdn (64)", "over budget"])  # 91.5 G
    assert not table.loc[table.index != "imdn (64)", "over budget"].any()


def test_003_course_psnr_is_rgb_without_shave():
    """003's test code scores "PSNR-RGB" on whole images; the lab records it beside PSNR-Y (lab.evaluate)."""
    from lab.evaluate import SUMMARY_KEYS

    assert "psnr_rgb" in SUMMARY_KEYS
    assert "psnr_y" in SUMMARY_KEYS


def test_the_logs_table_counts_what_it_says():
    if not DOCS.is_file():
        pytest.skip("docs/logs.md is not in this checkout")
    text = DOCS.read_text(encoding="utf-8")
    rows = [r for r in text.splitlines() if r.startswith("| ") and not r.startswith(("| entry", "| ---"))]
    status = [r.rstrip(" |").rsplit("|", 1)[1].strip() for r in rows]
    assert set(status) <= {"mapped", "partly", "not"}
    said = re.search(r"Counts below: (\d+) entries, (\d+) mapped, (\d+) partly, (\d+) not", text)
    assert said is not None
    counts = (len(rows), status.count("mapped"), status.count("partly"), status.count("not"))
    assert counts == tuple(int(g) for g in said.groups())
