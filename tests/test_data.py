"""Data: sources, aligned LR/HR patches (paired and degraded), augmentation consistency, DataLoaders."""

import numpy as np
import pytest
import torch

from lab import data, sources
from lab.degrade import build
from lab.images import write_image


def _blocky_pair(h=40, w=56, s=2, seed=0):
    """LR of random values and an HR whose s x s blocks repeat each LR pixel: alignment is then exact."""
    rng = np.random.default_rng(seed)
    lr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    hr = np.repeat(np.repeat(lr, s, axis=0), s, axis=1)
    return data.ImagePair("blocky", hr, lr)


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("augment", [False, True])
def test_paired_patches_stay_aligned(scale, augment):
    ds = data.PatchDataset([_blocky_pair(s=scale)], scale, patch_size=8, repeat=6, augment=augment, seed=1)
    for i in range(len(ds)):
        lr, hr = ds[i]
        assert lr.shape == (3, 8, 8)
        assert hr.shape == (3, 8 * scale, 8 * scale)
        up = lr.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
        assert torch.equal(up, hr), f"item {i}: LR and HR patches are misaligned"


def test_degraded_patches_match_bicubic_of_hr():
    from lab.resize import imresize_tensor

    pair = data.ImagePair("img", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    ds = data.PatchDataset([pair], 2, patch_size=12, augment=False, seed=3)
    lr, hr = ds[0]
    ref = imresize_tensor(hr[None], scale=0.5)[0].clamp(0, 1).mul(255).round().div(255)
    assert torch.allclose(lr, ref, atol=1e-6)


def test_same_seed_same_patches_new_epoch_new_patches():
    pair = data.builtin_images(["astronaut"])
    a = data.PatchDataset(pair, 2, patch_size=16, seed=5)
    b = data.PatchDataset(pair, 2, patch_size=16, seed=5)
    assert torch.equal(a[0][1], b[0][1])
    b.set_epoch(1)
    assert not torch.equal(a[0][1], b[0][1])


def test_builtin_and_folder_sources(tmp_path):
    imgs = data.builtin_images(["chelsea", "brick"])
    assert imgs[1].hr.shape[2] == 3
    assert imgs[1].hr.dtype == np.uint8
    write_image(tmp_path / "a.png", imgs[0].hr)
    assert [p.name for p in data.load_source(str(tmp_path), 2)] == ["a"]
    with pytest.raises(KeyError, match="known"):
        data.builtin_image("lena")
    with pytest.raises(FileNotFoundError, match="builtin"):
        data.load_source(str(tmp_path / "missing"), 2)


def test_small_image_error_names_it():
    with pytest.raises(ValueError, match="tiny"):
        data.PatchDataset([data.ImagePair("tiny", np.zeros((10, 10, 3), np.uint8))], 2, patch_size=16)


def test_dataloaders_batches_and_y_channel():
    dls = data.dataloaders("builtin:astronaut,coffee", scale=2, patch_size=12, batch_size=4, repeat=2,
                           valid="builtin:chelsea", valid_max_size=64, channels="y")
    lr, hr = dls.one_batch()
    assert lr.shape == (4, 1, 12, 12)
    assert hr.shape == (4, 1, 24, 24)
    vlr, vhr = next(iter(dls.valid))
    assert vhr.shape[-1] == 2 * vlr.shape[-1] == 64


def test_benchmark_layout(set5_dir):
    pairs = data.benchmark_images(set5_dir, 3)
    assert len(pairs) == 5
    for p in pairs:
        assert p.hr.shape[0] == 3 * p.lr.shape[0]
        assert p.hr.shape[1] == 3 * p.lr.shape[1]


# -- validation degraded as the task degrades ----------------------------------------------------------------------

def test_validation_is_degraded_with_a_seed_fixed_per_image():
    kw = dict(scale=2, patch_size=12, batch_size=4, repeat=4, valid="builtin:chelsea,coffee", valid_max_size=64)
    a = data.dataloaders("builtin:astronaut", degradation="blur_bicubic", seed=0, **kw)
    b = data.dataloaders("builtin:astronaut", degradation="blur_bicubic", seed=7, **kw)  # another training seed
    clean = data.dataloaders("builtin:astronaut", degradation="blur_bicubic", valid_degradation="bicubic", **kw)
    for pa, pb, pc in zip(a.valid_ds.pairs, b.valid_ds.pairs, clean.valid_ds.pairs):
        assert np.array_equal(pa.lr, pb.lr), "every run judges on the same degraded inputs"
        assert not np.array_equal(pa.lr, pc.lr), "the validation inputs are blurred, not clean bicubic"
        assert np.array_equal(pa.hr, pc.hr)
    first = [x.clone() for x, _ in a.valid]
    assert all(torch.equal(x, y) for x, (y, _) in zip(first, a.valid)), "the same inputs in every epoch"
    assert a.valid_degradation["preset"] == "blur_bicubic"
    assert clean.valid_degradation["preset"] == "bicubic"


def test_same_size_task_validates_on_degraded_inputs():
    dls = data.dataloaders("builtin:astronaut", scale=1, patch_size=16, batch_size=4, repeat=4,
                           degradation="denoise_gaussian", valid="builtin:chelsea", valid_max_size=64)
    pair = dls.valid_ds.pairs[0]
    assert pair.lr.shape == pair.hr.shape
    assert not np.array_equal(pair.lr, pair.hr)


# -- HR geometry before the LR ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op, ranges", [("hr_rescale", {"factor": [0.6, 0.9]}),
                                        ("hr_aspect", {"aspect": 1.8, "method": "stretch"}),
                                        ("hr_aspect", {"aspect": 1.8, "method": "crop"}),
                                        ("hr_crop", {"height": 64, "width": 72})])
def test_hr_geometry_ops_keep_patches_aligned(op, ranges):
    from lab.resize import imresize_tensor

    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (120, 140, 3), dtype=np.uint8)  # texture: a one-pixel shift would show
    pipe = build("bicubic", scale=2, hr_ops=[[op, ranges, 1.0]])
    ds = data.PatchDataset([data.ImagePair("tex", img)], 2, patch_size=12, degradation=pipe, repeat=4, augment=False)
    for i in range(len(ds)):
        lr, hr = ds[i]
        assert lr.shape == (3, 12, 12)
        assert hr.shape == (3, 24, 24)
        ref = imresize_tensor(hr[None], scale=0.5)[0].clamp(0, 1).mul(255).round().div(255)
        inner = (slice(None), slice(3, -3), slice(3, -3))  # away from the patch border (the kernel's support)
        assert (lr[inner] - ref[inner]).abs().max() <= 1.5 / 255, f"{op} item {i}: LR does not match its HR"


@pytest.mark.parametrize("preset", ["bicubic", "second_order", "realsr"])
def test_degrading_on_the_device_gives_the_loaders_batches(preset):
    """degrade_on='device': the loader decodes and crops, the batch is degraded where the model trains, and each
    item's LR equals the loader path's for the same seeds: bit-exact on CPU (the ops run image by image on the
    batch, as they do per item). The epoch a resumed run starts at draws the same batch again."""
    from lab.callbacks import DeviceDegrade

    kw = dict(scale=2, patch_size=16, batch_size=4, degradation=preset, valid="builtin:chelsea", valid_max_size=32,
              seed=3, steps=4, repeat=4, channels="y",
              degradation_kwargs={"kernel_bank": "builtin", "noise_bank": "builtin"} if preset == "realsr" else None)
    loader = data.dataloaders("builtin:astronaut,coffee", **kw)
    device = data.dataloaders("builtin:astronaut,coffee", degrade_on="device", **kw)
    for dl in (loader.train, device.train):
        dl.set_epoch(2)
    lr, hr = next(iter(loader.train))
    raw = next(iter(device.train))
    assert len(raw) == 3, "HR patches, each item's params, its flip code"
    assert raw[0].shape[-1] == 32, "the loader left the patches at HR size"
    lr_d, hr_d = device.train.dataset.finish_batch(*raw)
    assert torch.equal(hr_d, hr)
    assert torch.equal(lr_d, lr)
    device.train.set_epoch(2)  # a resumed run sets the data epoch: the same draws again
    again = device.train.dataset.finish_batch(*next(iter(device.train)))
    assert torch.equal(again[0], lr_d)
    cb = DeviceDegrade()
    assert cb.order < 0, "before every callback that reads the batch"


def test_degrade_on_names_the_accepted_values():
    with pytest.raises(ValueError, match="degrade_on must be one of"):
        data.dataloaders("builtin:astronaut", scale=2, patch_size=16, batch_size=2, degrade_on="gpu", steps=2)


def test_training_with_device_degradation_takes_the_loaders_steps():
    """The same seeds train the same weights (bit-exact on CPU) whether the loader or the device degrades."""
    from lab import learner, models

    def trained(where):
        dls = data.dataloaders("builtin:astronaut,coffee", scale=2, patch_size=16, batch_size=4,
                               degradation="second_order", valid="builtin:chelsea", valid_max_size=32, seed=1,
                               steps=3, repeat=4, degrade_on=where)
        torch.manual_seed(0)
        net = models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)
        learn = learner.restoration_learner(dls, net, loss="l1", lr=1e-3, amp="none")
        learn.remove_cb(learn.progress)
        with learn.no_logging():
            learner.fit_schedule(learn, dls.budget, 1e-3, "cosine")
        return [p.detach().clone() for p in net.parameters()]

    for a, b in zip(trained("loader"), trained("device")):
        assert torch.equal(a, b)


def test_dataloaders_validate_on_a_held_out_split_whatever_the_seed(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        write_image(tmp_path / f"p{i}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    kw = {"scale": 2, "patch_size": 8, "batch_size": 2, "steps": 2, "valid": "split:0.2", "valid_max_size": None}
    dls = data.dataloaders(str(tmp_path), seed=0, **kw)
    held = [im["file"] for im in dls.valid_split["images"]]
    train = {it.hr_file.name for src in dls.train_ds.mix.sources for it in src.items}
    assert len(held) == 2
    assert not train & set(held), "held-out images are never trained on"
    assert sorted(name for name, _, _ in dls.valid_ds.items) == sorted(f[:-4] for f in held)
    assert dls.sources[0]["images"] == 8, "the run records the training images left"
    assert dls.sources[0]["files"] == 10, "and the files its fingerprint covers: held-out ones too"
    assert dls.sources[0]["fingerprint"] == sources.open_source(str(tmp_path), 2).fingerprint()
    other = data.dataloaders(str(tmp_path), seed=5, **kw)
    assert other.valid_split == dls.valid_split, "a rerun or a run of another seed validates on the same files"
    assert torch.equal(other.valid_ds[0][0], dls.valid_ds[0][0]), "degraded with a seed fixed per image"
    with pytest.raises(ValueError, match="leave valid_lr empty"):
        data.dataloaders(str(tmp_path), valid_lr=str(tmp_path), **kw)
