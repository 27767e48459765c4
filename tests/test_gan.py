"""GAN pieces: adversarial losses on hand-computable logits, the critic stepper on a scripted loss sequence, and tiny
GANLearner runs (conditional critic, frozen-network steps, NoGAN critic pretraining, bf16, run records)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.vision.gan import FixedGANSwitcher, GANTrainer
from fit_helpers import CutAfter
from torch import nn

from lab import models, runs
from lab.gan import (
    ADV_LOSSES,
    CHANCE_LOSS,
    ConditionalCritic,
    CriticStepper,
    GeneratorLoss,
    critic_loss,
    gan_learner,
    generator_adv_loss,
    make_switcher,
    pretrain_critic,
)
from lab.recording import record_run
from lab.vocab import UnknownName

T = torch.tensor


def sp(x: float) -> float:
    """softplus: BCE-with-logits of logit x against target 0 is sp(x), against target 1 is sp(-x)."""
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------- losses on hand-computable logits

@pytest.mark.parametrize("kind, real, fake, expected", [
    ("vanilla", [0.0, 0.0], [0.0, 0.0], math.log(2)),
    ("vanilla", [2.0], [-1.0], (sp(-2) + sp(-1)) / 2),
    ("lsgan", [0.0], [0.0], 0.5),
    ("lsgan", [1.0, 1.0], [0.0, 0.0], 0.0),
    ("lsgan", [0.5], [0.5], 0.25),
    ("lsgan", [3.0], [-1.0], (4 + 1) / 2),
    ("hinge", [0.0], [0.0], 1.0),
    ("hinge", [1.0], [-1.0], 0.0),  # exactly at the margin
    ("hinge", [3.0], [-2.0], 0.0),  # beyond it: no loss
    ("hinge", [0.5, -1.0], [0.0, 1.0], ((0.5 + 2.0) / 2 + (1.0 + 2.0) / 2) / 2),
    ("ragan", [3.0, 3.0], [3.0, 3.0], math.log(2)),  # only differences count
    ("ragan", [2.0, 0.0], [0.0, 0.0], ((sp(-2) + sp(0)) / 2 + sp(-1)) / 2),
])
def test_critic_loss_known_values(kind, real, fake, expected):
    assert float(critic_loss(kind, T(real), T(fake))) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind, fake, real, expected", [
    ("vanilla", [0.0], None, math.log(2)),
    ("vanilla", [1.0, -1.0], None, (sp(-1) + sp(1)) / 2),
    ("lsgan", [1.0], None, 0.0),
    ("lsgan", [0.0, 3.0], None, (1 + 4) / 2),
    ("hinge", [1.0, 3.0], None, -2.0),
    ("ragan", [0.0], [0.0], math.log(2)),
    ("ragan", [0.0, 0.0], [2.0, 0.0], ((sp(2) + sp(0)) / 2 + sp(1)) / 2),
])
def test_generator_adv_loss_known_values(kind, fake, real, expected):
    real = None if real is None else T(real)
    assert float(generator_adv_loss(kind, T(fake), real)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_better_critic_lower_loss_and_fooled_critic_lower_generator_loss(kind):
    # the logits a confident D gives real and fake images: lsgan regresses to 1 / 0, the others are signed scores
    r, f = (T([1.0, 1.0]), T([0.0, 0.0])) if kind == "lsgan" else (T([2.0, 3.0]), T([-2.0, -3.0]))
    mid = (r + f) / 2  # undecided
    good, chance, bad = critic_loss(kind, r, f), critic_loss(kind, mid, mid), critic_loss(kind, f, r)
    assert good < chance < bad
    fooled = generator_adv_loss(kind, r, mid)  # D scores the fakes like real images
    not_fooled = generator_adv_loss(kind, f, mid)
    assert fooled < not_fooled


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_chance_loss_is_the_best_constant_critic(kind):
    consts = torch.linspace(-3, 3, 601)
    best = min(float(critic_loss(kind, c.expand(4), c.expand(4))) for c in consts)
    assert best == pytest.approx(CHANCE_LOSS[kind], abs=1e-4)


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_patch_maps_match_flattened_logits_and_backprop(kind):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2, 1, 3, 3, generator=g, requires_grad=True)
    fake = torch.randn(2, 1, 3, 3, generator=g, requires_grad=True)
    lc, lg = critic_loss(kind, real, fake), generator_adv_loss(kind, fake, real.detach())
    assert lc.shape == ()
    assert lg.shape == ()
    assert float(lc) == pytest.approx(float(critic_loss(kind, real.flatten(), fake.flatten())), abs=1e-6)
    assert float(lg) == pytest.approx(float(generator_adv_loss(kind, fake.flatten(), real.flatten())), abs=1e-6)
    (lc + lg).backward()
    assert real.grad.abs().sum() > 0
    assert fake.grad.abs().sum() > 0


def test_generator_loss_is_content_plus_weighted_adversarial_and_ragan_asks_the_critic():
    calls = []

    def critic(x):
        calls.append(x)
        return x.mean(dim=(1, 2, 3))

    out, target = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    fake_pred = T([1.0, -1.0])
    loss = GeneratorLoss("l1", adv_weight=0.1, kind="vanilla")
    expected = 0.5 + 0.1 * (sp(-1) + sp(1)) / 2
    assert float(loss(fake_pred, out, target)) == pytest.approx(expected, abs=1e-6)
    assert float(loss.last_parts["content"]) == pytest.approx(0.5)
    rag = GeneratorLoss("l1", adv_weight=1.0, kind="ragan", critic=critic)
    got = float(rag(fake_pred, out, target))
    assert len(calls) == 1
    assert calls[0] is target
    real_pred = T([0.5, 0.5])
    assert got == pytest.approx(0.5 + float(generator_adv_loss("ragan", fake_pred, real_pred)), abs=1e-6)


def test_bad_names_and_arguments_list_the_choices():
    for call in (lambda: critic_loss("wgan", T([0.0]), T([0.0])), lambda: generator_adv_loss("wgan", T([0.0])),
                 lambda: GeneratorLoss(kind="wgan")):
        with pytest.raises(UnknownName, match="unknown adversarial loss 'wgan'; known adversarial losses: vanilla, "
                                              "lsgan, hinge, ragan"):
            call()
    with pytest.raises(UnknownName, match="unknown switcher 'sometimes'; known switchers: adaptive, fixed"):
        make_switcher("sometimes")
    with pytest.raises(ValueError, match=r"\['n_crit', 'n_gen'\]"):
        make_switcher("fixed", threshold=0.5)
    with pytest.raises(ValueError, match="real_pred"):
        generator_adv_loss("ragan", T([0.0]))
    with pytest.raises(ValueError, match="needs the critic"):
        GeneratorLoss(kind="ragan")
    with pytest.raises(ValueError, match="min_crit"):
        CriticStepper(min_crit=3, max_crit=2)
    with pytest.raises(ValueError, match="adv_weight"):
        GeneratorLoss(adv_weight=-1)


def test_gan_learner_rejects_bad_choices_up_front():
    dls, g = _synthetic_dls(), _generator()
    with pytest.raises(UnknownName, match="unknown adversarial loss 'wgan'; known .*: vanilla, lsgan, hinge, ragan"):
        gan_learner(dls, g, gan_loss="wgan")
    with pytest.raises(KeyError, match="disc_patch"):
        gan_learner(dls, g, disc="disc_nope")
    with pytest.raises(UnknownName, match="unknown switcher 'sometimes'; known switchers: adaptive, fixed"):
        gan_learner(dls, g, disc="disc_simple", switcher="sometimes")
    with pytest.raises(ValueError, match="conditional=True"):
        gan_learner(dls, g, disc="disc_simple", disc_kwargs={"cond_ch": 3})
    with pytest.raises(ValueError, match="not conditional"):
        gan_learner(dls, g, disc=models.create("disc_simple", num_feat=4), conditional=True)
    with pytest.raises(UnknownName, match="unknown amp mode 'fp8'; known amp modes: None, none, bf16, fp16, auto"):
        gan_learner(dls, g, disc="disc_simple", amp="fp8")


# ---------------------------------------------------------------- the stepper on a scripted loss sequence

class _FakeTrainer:
    def __init__(self):
        self.gen_mode = False

    def switch(self, gen_mode=None):
        self.gen_mode = (not self.gen_mode) if gen_mode is None else gen_mode


def _drive(stepper, crit_losses, n_steps):
    """Run `stepper` on a scripted sequence of critic losses; return the modes trained ('D'/'G')."""
    trainer, losses, modes = _FakeTrainer(), iter(crit_losses), []
    stepper.learn = SimpleNamespace(training=True, loss=T(0.0), gan_trainer=trainer)
    stepper.before_fit()
    for _ in range(n_steps):
        modes.append("G" if trainer.gen_mode else "D")
        stepper.learn.loss = T(1.0) if trainer.gen_mode else T(next(losses))
        stepper.after_batch()
    return "".join(modes)


def test_stepper_trains_critic_while_its_loss_is_above_threshold_within_bounds():
    s = CriticStepper(threshold=0.5, min_crit=2, max_crit=4, n_gen=1)
    # D: 0.9 (k<min) 0.4 (below, k=2: stop) | G | D: 0.3 (k<min) 0.5 (not below) 0.55 0.7 (k=max: stop) | G |
    # D: 0.6 0.2 (stop) | G
    assert _drive(s, [0.9, 0.4, 0.3, 0.5, 0.55, 0.7, 0.6, 0.2], 11) == "DDGDDDDGDDG"
    assert (s.crit_steps, s.gen_steps) == (8, 3)


def test_stepper_generator_phase_is_n_gen_steps_and_validation_never_switches():
    s = CriticStepper(threshold=0.5, min_crit=1, max_crit=3, n_gen=2)
    assert _drive(s, [0.1, 0.9, 0.9, 0.9, 0.2], 9) == "DGGDDDGGD"
    s.learn.training = False
    mode = s.learn.gan_trainer.gen_mode
    for _ in range(5):
        s.after_batch()
    assert s.learn.gan_trainer.gen_mode == mode


# ---------------------------------------------------------------- tiny GAN runs

def _synthetic_dls(n_train=16, n_valid=2, bs=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(n_train + n_valid, 3, 16, 16, generator=g)
    lr = nn.functional.avg_pool2d(hr, 2)
    ds = list(zip(lr, hr))
    dls = DataLoaders.from_dsets(ds[:n_train], ds[n_train:], bs=bs, device="cpu", num_workers=0)
    dls.scale, dls.channels = 2, "rgb"
    return dls


def _generator(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)


def _disc(seed=1, **kw):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.create("disc_simple", num_feat=4, num_layers=1, **kw)


def _fit(learn, n, lr=1e-3):
    with learn.no_logging(), learn.no_bar():
        learn.fit(n, lr)


class _Modes(Callback):
    """Record, for every training batch, which network trains ('D' or 'G')."""

    order = GANTrainer.order + 2

    def before_fit(self):
        self.seen = []

    def before_batch(self):
        if self.training:
            self.seen.append("G" if self.learn.gan_trainer.gen_mode else "D")


@pytest.mark.slow
def test_tiny_gan_run_records_losses_and_checkpoints_the_generator(tmp_path):
    from lab.data import dataloaders

    dls = dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8, valid="builtin:chelsea",
                      valid_max_size=48)
    g = _generator()
    g0 = [p.detach().clone() for p in g.parameters()]
    run = runs.create({"model": "edsr_baseline"}, root=tmp_path)
    learn = gan_learner(dls, g, disc="disc_simple", disc_kwargs={"num_feat": 8, "num_layers": 2}, switcher="fixed",
                        cbs=record_run(run))
    assert learn.model.generator is g
    _fit(learn, 2)
    hist = run.history
    assert [h["epoch"] for h in hist] == [0, 1]
    for h in hist:
        for k in ("gen_loss", "crit_loss", "train_content", "train_adv", "train_crit", "psnr_y", "ssim_y"):
            assert math.isfinite(h[k]), (k, h)
        assert h["train_crit_steps"] == h["train_gen_steps"] == len(dls.train) // 2
    assert not all(torch.equal(a, b) for a, b in zip(g0, g.parameters()))
    rebuilt, payload = models.load_checkpoint(run.dir / "checkpoints" / "last.pth")
    assert payload["model_name"] == "edsr_baseline"
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), g.state_dict().values()))
    assert (run.dir / "samples" / "epoch_001.png").is_file()


class _SpyDisc(nn.Module):
    """A conditional disc_simple that records every (x, cond) it is called with."""

    def __init__(self):
        super().__init__()
        self.inner = _disc(cond_ch=3)
        self.cond_ch, self.calls = 3, []

    def forward(self, x, cond=None):
        self.calls.append((x.detach().clone(), None if cond is None else cond.detach().clone()))
        return self.inner(x, cond)


def test_conditional_critic_receives_the_batch_lr():
    dls = _synthetic_dls()
    spy = _SpyDisc()
    learn = gan_learner(dls, _generator(), disc=spy, conditional=True, switcher="fixed")
    assert isinstance(learn.model.critic, ConditionalCritic)
    assert learn.model.critic.disc is spy
    _fit(learn, 1)
    pairs = [(lr, hr) for lr, hr in (dls.train.dataset + dls.valid.dataset)]
    lrs, hrs = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    n_real = 0
    assert spy.calls
    for x, cond in spy.calls:
        assert cond is not None
        assert cond.shape == (x.shape[0], 3, 8, 8)
        idx = [int((lrs - c).abs().flatten(1).sum(1).argmin()) for c in cond]
        assert torch.equal(cond, lrs[idx])  # every condition is a real LR input...
        if torch.equal(x, hrs[idx]):  # ...and D(real HR) gets that HR's own LR
            n_real += 1
    assert n_real >= 1
    assert learn.model.critic.cond is None  # cleared after the batch
    with pytest.raises(ValueError, match="FeedCondition"):
        learn.model.critic(hrs[:1])


@pytest.mark.parametrize("kw, period", [
    ({"threshold": -math.inf, "max_crit": 3, "n_gen": 2}, "DDDGG"),  # D never good enough: max_crit bounds it
    ({"threshold": math.inf, "min_crit": 2}, "DDG"),  # D always good enough: it stops after min_crit steps
])
def test_adaptive_switcher_in_a_fit_follows_its_rule(kw, period):
    dls = _synthetic_dls(n_train=20)  # 5 batches an epoch; the phase carries over the epoch boundary
    modes = _Modes()
    learn = gan_learner(dls, _generator(), disc=_disc(), switcher="adaptive", switcher_kwargs=kw, cbs=[modes])
    _fit(learn, 2)
    assert "".join(modes.seen) == (period * 4)[:10]
    assert (learn.critic_stepper.crit_steps, learn.critic_stepper.gen_steps) == (modes.seen.count("D"),
                                                                                 modes.seen.count("G"))


def test_fixed_switcher_by_name_and_only_the_trained_network_moves():
    dls = _synthetic_dls(n_train=24)
    modes, snaps = _Modes(), []

    class Snap(Callback):
        order = 90

        def before_batch(self):
            self.before = [p.detach().clone() for p in self._nets()]

        def after_batch(self):
            if self.training:
                snaps.append((self.before, [p.detach().clone() for p in self._nets()]))

        def _nets(self):
            return [next(self.learn.model.generator.parameters()), next(self.learn.model.critic.parameters())]

    learn = gan_learner(dls, _generator(), disc=_disc(), switcher="fixed", switcher_kwargs={"n_crit": 2, "n_gen": 1},
                        opt="adam", wd=0.1, cbs=[modes, Snap()])
    assert isinstance(learn.gan_trainer, GANTrainer)
    assert isinstance(learn.fixed_gan_switcher, FixedGANSwitcher)
    _fit(learn, 1)
    assert "".join(modes.seen) == "DDGDDG"
    assert len(snaps) == 6
    for m, (before, after) in zip(modes.seen, snaps):
        g_moved, d_moved = (not torch.equal(b, a) for b, a in zip(before, after))
        assert (g_moved, d_moved) == ((True, False) if m == "G" else (False, True)), m


def test_pretrain_critic_trains_only_the_critic_and_records_nothing(tmp_path):
    dls = _synthetic_dls()
    g, run = _generator(), runs.create({"phase": "nogan"}, root=tmp_path)
    modes = _Modes()
    learn = gan_learner(dls, g, disc=_disc(), cbs=[*record_run(run), modes])
    _fit(learn, 1)  # one normal epoch first, so the generator has optimizer state that could leak
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = [p.detach().clone() for p in learn.model.critic.parameters()]
    n_hist = len(run.history)
    with learn.no_logging(), learn.no_bar():
        assert pretrain_critic(learn, 6) == 6
    assert modes.seen == ["D"] * 6
    assert all(torch.equal(a, b) for a, b in zip(g0, g.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, learn.model.critic.parameters()))
    assert len(run.history) == n_hist
    assert all(p.requires_grad for p in g.parameters())
    with pytest.raises(ValueError, match="n_batches"):
        pretrain_critic(learn, 0)


def test_bf16_autocasts_both_networks_and_unwraps_after():
    dls = _synthetic_dls(n_train=8)
    seen = []

    class Spy(nn.Module):
        def __init__(self, name, inner):
            super().__init__()
            self.name, self.inner = name, inner

        def forward(self, x):
            seen.append((self.name, torch.is_autocast_enabled("cpu")))
            return self.inner(x)

    spy_g, spy_d = Spy("G", _generator()), Spy("D", _disc())
    learn = gan_learner(dls, spy_g, disc=spy_d, gan_loss="ragan", switcher="fixed", amp="bf16")
    _fit(learn, 1)
    # GANLoss calls both networks directly, outside the GAN module's forward: those calls are autocast too
    assert {n for n, _ in seen} == {"G", "D"}
    assert all(on for _, on in seen)
    assert "forward" not in spy_g.__dict__
    assert "forward" not in spy_d.__dict__
    assert not torch.is_autocast_enabled("cpu")
    assert all(math.isfinite(float(v)) for v in learn.recorder.values[-1][:2])




@pytest.mark.slow
@pytest.mark.parametrize("switcher", ["adaptive", "fixed"])
def test_adversarial_phase_resumes_to_the_uninterrupted_weights(tmp_path, switcher):
    from lab.data import dataloaders
    from lab.recording import load_resume_state

    def learner(run):
        dls = dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=12,
                          valid="builtin:chelsea", valid_max_size=32, seed=3)
        # adaptive: DDDGG repeating over 3-batch epochs, so the stepper is mid-phase (k=1) when epoch 1 ends
        kw = {"switcher_kwargs": {"threshold": -math.inf, "max_crit": 3, "n_gen": 2}} if switcher == "adaptive" else {}
        return gan_learner(dls, _generator(), disc=_disc(), switcher=switcher, data_offset=4,
                           cbs=[*record_run(run, phase="gan"), _Modes()], **kw)

    whole, cut = runs.create({"x": 0}, root=tmp_path, name="whole"), runs.create({"x": 1}, root=tmp_path, name="cut")
    a = learner(whole)
    _fit(a, 3)
    b = learner(cut)
    with b.no_logging(), b.no_bar():
        b.fit(3, 1e-3, cbs=CutAfter(1))
    c = learner(cut)  # a fresh process: new networks and learner, state from gan_last.pth
    start = load_resume_state(c, cut.dir / "checkpoints" / "gan_last.pth")
    assert start == 2
    with c.no_logging(), c.no_bar():
        c.fit(3, 1e-3, start_epoch=start)
    per_epoch = len(a.dls.train)
    modes_a = next(cb for cb in a.cbs if isinstance(cb, _Modes)).seen
    modes_c = next(cb for cb in c.cbs if isinstance(cb, _Modes)).seen
    assert per_epoch == 3, "the resumed fit trains in the uninterrupted order"
    assert modes_c == modes_a[2 * per_epoch:], "the resumed fit trains in the uninterrupted order"
    assert "D" in modes_c
    assert "G" in modes_c
    for part in ("generator", "critic"):
        for (k, va), vc in zip(getattr(a.model, part).state_dict().items(), getattr(c.model, part).state_dict().values()):
            assert torch.equal(va, vc), f"{part}.{k} differs after resuming"
    assert [h["epoch"] for h in cut.history] == [0, 1, 2]
    assert all(h["phase"] == "gan" for h in cut.history)
    for hw, hc in zip(whole.history, cut.history):
        assert hc["psnr_y"] == pytest.approx(hw["psnr_y"], abs=1e-9)
        assert hc["train_crit_steps"] == hw["train_crit_steps"]
        assert hc["train_gen_steps"] == hw["train_gen_steps"]


def test_a_device_degraded_adversarial_phase_trains_as_the_loader_degraded_one():
    from lab.data import dataloaders

    def trained(where):
        dls = dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8, valid="builtin:chelsea",
                          valid_max_size=32, seed=3, degradation="second_order", degrade_on=where)
        assert dls.train.dataset.degrade_on == where
        learn = gan_learner(dls, _generator(), disc=_disc(), switcher="fixed")
        _fit(learn, 1)
        return learn.model

    a, b = trained("loader"), trained("device")
    for part in ("generator", "critic"):
        for (k, va), vb in zip(getattr(a, part).state_dict().items(), getattr(b, part).state_dict().values()):
            assert torch.equal(va, vb), f"{part}.{k} differs between the two ways of degrading"


def test_resume_refuses_a_checkpoint_of_the_other_kind(tmp_path):
    from lab.data import dataloaders
    from lab.recording import load_resume_state

    dls = dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=4, valid="builtin:chelsea",
                      valid_max_size=32)
    run = runs.create({"x": 0}, root=tmp_path)
    learn = gan_learner(dls, _generator(), disc=_disc(), switcher="fixed", cbs=record_run(run, phase="gan"))
    _fit(learn, 1)
    from lab.learner import restoration_learner

    plain = restoration_learner(dls, _generator(), loss="l1")
    with pytest.raises(ValueError, match="discriminator"):
        load_resume_state(plain, run.dir / "checkpoints" / "gan_last.pth")


def test_gan_builds_on_learner_not_the_reverse():
    """`gan_learner` lives in lab.gan, which builds on lab.learner; lab.learner neither imports nor re-exports it."""
    import lab.learner

    assert gan_learner.__module__ == "lab.gan"
    with pytest.raises(AttributeError, match="no attribute 'gan_learner'"):
        lab.learner.gan_learner  # noqa: B018
