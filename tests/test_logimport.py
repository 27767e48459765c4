"""`lab log import`: a hand-kept diff log (the form of log 000) read into a lineage spec; the fixture is written
here in that form, not taken from a log."""

from __future__ import annotations

import yaml

from lab import cli, derive, logimport

LOG = """# My deblur notes

---

## 1

steps: 20000
Generator - Norm: Instance
cosine restart: t_mul=2.0, m_mul=0.8, alpha=0.05
exponential decay: 0.99^(step/500)

## 2

(unchanged)
Activation: ReLU => Swish
lr: 2e-4
forward: ~40ms

## 3~5

steps: 5000
wd: 1e-4, 3e-5, 1e-5
(chose 3e-5)

## 5.1

steps: 20000|40000
batch size: 24
loss: L1 + SSIM

## 6

(same as ##2) grad clip: -0.3
painted the walls blue
dataset: my phone photos

---

VDSR

## 7

LR: 1e-3
cosine restarts (warmup_cycle=2)
"""


def test_import_maps_params_links_and_notes_and_lists_what_it_cannot():
    spec, summary = logimport.import_log(LOG, log="mine", factor=100)
    e = {d["id"]: d for d in spec["entries"]}
    assert list(e) == ["1", "2", "3~5", "5.1", "5.1|40000", "6", "7"]
    assert e["1"]["params"] == {"steps": 20000, "model_kwargs.norm": "instance", "schedule": "warmup_restarts_decay",
                                "schedule_kwargs.warmup_pct": 0.0, "schedule_kwargs.t_mul": 2.0,
                                "schedule_kwargs.m_mul": 0.8, "schedule_kwargs.alpha": 0.05,
                                "schedule_kwargs.decay_rate": 0.99, "schedule_kwargs.decay_steps": 500}
    assert e["2"]["params"] == {"model_kwargs.act": "swish", "lr": 2e-4}
    assert "forward: ~40ms" in e["2"]["note"]
    assert e["3~5"]["vary"] == {"wd": [1e-4, 3e-5, 1e-5]}
    assert e["3~5"]["chosen"] == {"wd": 3e-5}
    assert e["5.1"]["params"] == {"steps": 20000, "batch_size": 24, "loss": "l1 + ssim"}
    assert e["5.1|40000"] == {"id": "5.1|40000", "from": "5.1", "extend": 40000, "note": e["5.1|40000"]["note"],
                              "_unmapped": []}
    assert e["6"]["from"] == "2"
    assert e["6"]["params"] == {"clip": -0.3}
    assert e["6"]["_unmapped"] == ["painted the walls blue", "dataset: my phone photos"]
    assert e["7"]["from"] is None, "a section title starts a new family from the base"
    assert e["7"]["params"]["model"] == "vdsr"
    assert e["7"]["params"]["schedule_kwargs.warmup_cycles"] == 2
    assert summary["unmapped"] == 2
    assert summary["unmapped_kinds"] == {"free text": 1, "dataset": 1}
    assert summary["lines"] == summary["params"] + summary["links"] + summary["notes"] + summary["unmapped"]


def test_the_written_spec_plans_in_dependency_order_at_its_cpu_scale(tmp_path, capsys):
    log = tmp_path / "NOTES.md"
    log.write_text(LOG.split("---\n\nVDSR")[0])
    out = tmp_path / "notes.yaml"
    assert cli.main(["log", "import", str(log), "--out", str(out), "--scale", "100", "--base", "deblur"]) == 0
    printed = capsys.readouterr().out
    assert "2 not mapped" in printed
    assert "unmapped, NOTES ##6: painted the walls blue" in printed
    text = out.read_text()
    assert "# unmapped (NOTES ##6): painted the walls blue" in text
    spec = yaml.safe_load(text)
    assert spec["base"]["model"] == "resunet", "--base takes a sweep spec's base params"
    plan = derive.run_lineage(out, dry_run=True)
    assert list(plan["run"])[:4] == ["1", "2", "3~5/wd=0.0001", "3~5/wd=3e-05"]
    by_run = plan.set_index("run")
    assert by_run.loc["5.1", "from"] == "3~5/wd=3e-05"
    assert by_run.loc["5.1", "changes"]["steps"] == 200, "20000 steps at 1/100"
    assert by_run.loc["5.1|40000", "changes"] == {"extend to steps": 400}
