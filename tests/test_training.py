"""The training lifecycle helpers: which weights a fine-tuned run starts from, and the record it keeps of them."""

from __future__ import annotations

import pytest
import torch

from lab import ledger, models, runs, training


def _tiny(seed: int):
    torch.manual_seed(seed)
    return models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)


def test_init_from_a_gan_run_takes_the_phase_asked_for_and_the_ledger_says_which(tmp_path):
    src = runs.create({}, root=tmp_path, name="gan")
    pre, adv = _tiny(1), _tiny(2)
    src.save_checkpoint(models.checkpoint_payload(pre), "best")
    src.save_checkpoint(models.checkpoint_payload(adv), "last", "gan")
    src.save_checkpoint(models.checkpoint_payload(adv), "final")
    for source, expected, phase in ((str(src.id), adv, None), (f"{src.id}:gan", adv, "gan"),
                                    (f"{src.id}:pretrain", pre, "pretrain")):
        ft = runs.create({"init_from": source}, root=tmp_path, name="ft")
        net = _tiny(3)
        got = training.init_weights(ft, net, source)
        assert got["phase"] == phase
        assert len(got["loaded"]) == len(net.state_dict())
        for k, v in net.state_dict().items():
            assert torch.equal(v, expected.state_dict()[k]), f"{source}: {k} not from the expected checkpoint"
    df = ledger.load(tmp_path)
    assert list(df["init_weights"].dropna()) == [f"{src.name}/final.pth", f"{src.name}/final.pth",
                                                 f"{src.name}/best.pth"]
    with pytest.raises(FileNotFoundError, match="no run with id 99"):
        training.init_weights(ft, _tiny(4), "99:gan")


def test_a_parameter_changed_after_its_cell_ran_is_refused():
    class Built:
        built_from = {"patch_size": 24, "data": "builtin"}

    training.check_built({"patch_size": 24, "data": "builtin", "lr": 1e-3}, Built())
    with pytest.raises(ValueError, match=r"patch_size 24 -> 48.*run the cells"):
        training.check_built({"patch_size": 48, "data": "builtin"}, Built())
    net = training.build_model("edsr_baseline", {"num_block": 1, "num_feat": 8}, 2)
    assert net.built_from == {"model": "edsr_baseline", "model_kwargs": {"num_block": 1, "num_feat": 8}, "scale": 2,
                              "linear_light": False}
