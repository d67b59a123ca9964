"""A pack (dcgan/pack.py): members of mixed rates, betas, D:G ratios, latent sizes, losses and
augmentations trained as one model equal the same configs trained alone (dcgan.train.train_step),
weights, Adam's state, the moving average, the logged losses and every random stream alike."""

from __future__ import annotations

import pytest
import torch

from dcgan.config import TrainConfig
from dcgan.data import load_splits
from dcgan.pack import Pack
from dcgan.state import setup, unwrap
from dcgan.train import train_step

BASE = dict(dataset="digits", image_size=8, ngf=8, ndf=8, batch_size=16, ema=0.999, device="cpu", eval_every=10,
            steps=100)
MIXED = [  # one pack of BatchNorm D's: every value a pack may mix
    dict(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, d_steps_per_g=1, latent_dim=8, seed=1),
    dict(loss="hinge", lr_g=1e-3, lr_d=4e-4, beta1=0.0, beta2=0.9, d_steps_per_g=2, latent_dim=16, seed=2,
         augment="translation"),
    dict(loss="lsgan", lr_g=5e-4, lr_d=1e-4, beta1=0.5, beta2=0.99, d_steps_per_g=3, latent_dim=8, seed=3,
         augment="color,translation,cutout"),
    dict(loss="bce", lr_g=1e-4, lr_d=3e-4, beta1=0.8, beta2=0.999, d_steps_per_g=1, latent_dim=12, seed=4),
]
WGAN = [  # and one of layer-normed D's
    dict(loss="wgan-gp", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, d_steps_per_g=2, latent_dim=8, seed=5),
    dict(loss="wgan-gp", lr_g=3e-4, lr_d=2e-4, beta1=0.5, beta2=0.9, d_steps_per_g=1, latent_dim=10, seed=6,
         augment="translation"),
]


@pytest.fixture(scope="module")
def splits():
    torch.set_num_threads(1)
    return load_splits(TrainConfig.from_dict({**BASE}))


def gans(members, splits):
    return [setup(TrainConfig.from_dict({**BASE, **m}), splits) for m in members]


def assert_same(alone, packed, atol, sums=True):
    for a, b in zip(alone, packed):
        for net in ("g", "d"):
            mine, theirs = unwrap(getattr(a, net)).state_dict(), unwrap(getattr(b, net)).state_dict()
            for name in mine:
                torch.testing.assert_close(theirs[name], mine[name], atol=atol, rtol=0, msg=f"{a.cfg.loss} {net} {name}")
        for opt in ("opt_g", "opt_d"):
            mine, theirs = getattr(a, opt).state_dict()["state"], getattr(b, opt).state_dict()["state"]
            assert mine.keys() == theirs.keys()
            for i in mine:
                assert float(theirs[i]["step"]) == float(mine[i]["step"])
                for key in ("exp_avg", "exp_avg_sq"):
                    torch.testing.assert_close(theirs[i][key], mine[i][key], atol=atol, rtol=1e-4)
        for name, t in a.g_ema.module.state_dict().items():
            torch.testing.assert_close(b.g_ema.module.state_dict()[name], t, atol=atol, rtol=0, msg=f"g_ema {name}")
        assert int(b.g_ema.n_averaged) == int(a.g_ema.n_averaged)
        assert torch.equal(b.noise.get_state(), a.noise.get_state()), "the pack drew another count of numbers"
        assert b.sampler.pos == a.sampler.pos and torch.equal(b.sampler.perm, a.sampler.perm)
        assert b.step == a.step
        if not sums:  # (the losses logged since the last evaluation are not a checkpoint's)
            continue
        assert b.n_summed == a.n_summed
        for key, value in a.sums.items():
            torch.testing.assert_close(b.sums[key], value, atol=atol * 100, rtol=1e-4)


def weights(gan) -> dict[str, torch.Tensor]:
    return {f"{net}.{name}": t.detach().clone() for net in ("g", "d")
            for name, t in unwrap(getattr(gan, net)).named_parameters()}


@pytest.mark.parametrize("members", [MIXED, WGAN], ids=["mixed", "wgan-gp"])
def test_packed_steps_equal_each_member_alone(splits, members):
    alone, packed = gans(members, splits), gans(members, splits)
    before = [weights(gan) for gan in alone]
    pack = Pack(packed)
    for _ in range(2):  # (Adam's first update is the same for any betas)
        for gan in alone:
            train_step(gan)
        flags = pack.step()
    pack.export()
    assert [bool(f) for f in flags] == [False] * len(members)
    assert_same(alone, packed, atol=1e-6)
    for start, a, b in zip(before, alone, packed):  # the updates themselves: the packed one's error under
        mine, theirs = weights(a), weights(b)       # 2e-5 of its size (measured 8e-7; betas off by 1%: 1e-3)
        for name in start:
            ours, its = mine[name] - start[name], theirs[name] - start[name]
            assert float((its - ours).norm() / ours.norm()) < 2e-5, (a.cfg.loss, name)


def alone_and_packed(members, splits, steps: int):
    """`members` trained `steps` updates alone, and as one pack (exported)."""
    alone, packed = gans(members, splits), gans(members, splits)
    pack = Pack(packed)
    for _ in range(steps):
        for gan in alone:
            train_step(gan)
        pack.step()
    pack.export()
    return alone, packed


def test_fifty_packed_steps_stay_with_each_member_alone(splits):
    assert_same(*alone_and_packed(MIXED, splits, 50), atol=1e-4)


def test_a_member_loaded_into_a_pack_comes_out_as_it_went_in(splits):
    """An exploit inside a pack is `load` of the source's GAN into the target's place: what goes in
    (trained alone, so its optimiser has state) comes out unchanged, and trains on as it would alone."""
    members = gans(MIXED, splits)
    source = gans(MIXED[1:2], splits)[0]
    for _ in range(3):
        train_step(source)
    twin = gans(MIXED[1:2], splits)[0]
    for _ in range(3):
        train_step(twin)
    pack = Pack(members)
    pack.load(0, source)
    pack.export()
    assert_same([twin], [source], atol=0)
    pack.step()
    pack.export()
    train_step(twin)
    assert_same([twin], [pack.members[0]], atol=1e-6)


def test_a_checkpoint_written_from_a_pack_trains_on_alone_and_back_in_a_pack(splits, tmp_path):
    """A member's checkpoint is today's format: saved from the pack, it resumes a lone run that
    goes on as the pack does, and loaded into another pack it goes on alike."""
    from dcgan.checkpoint import gather_rng, load_checkpoint, save_checkpoint

    pack = Pack(gans(MIXED, splits))
    for _ in range(3):
        pack.step()
    pack.export()
    member = pack.members[2]  # lsgan, 3 D steps a G step, every augmentation
    save_checkpoint(member, tmp_path / "step_3", gather_rng(member), None)
    alone = gans(MIXED[2:3], splits)[0]
    load_checkpoint(alone, tmp_path / "step_3", rank=0)
    again = gans(MIXED, splits)
    load_checkpoint(again[2], tmp_path / "step_3", rank=0)
    other = Pack(again)
    train_step(alone)
    for p in (pack, other):
        p.step()
        p.export()
    assert_same([alone], [pack.members[2]], atol=1e-6, sums=False)
    assert_same([alone], [other.members[2]], atol=1e-6, sums=False)


def test_an_exploit_copy_in_a_pack_equals_the_source_checkpoint_restored(splits, tmp_path):
    """A PBT exploit inside a pack (dcgan.checkpoint.copy_state, in memory) gives the member what
    restoring the source's checkpoint gives it (as Tune's PBT does, through a file): the same state,
    the new values in its optimisers, and the same updates after it, in the pack or alone."""
    from dcgan.checkpoint import copy_state, gather_rng, load_checkpoint, save_checkpoint

    pack = Pack(gans(MIXED, splits))
    for _ in range(3):
        pack.step()
    pack.export()
    source = pack.members[1]
    new = TrainConfig.from_dict({**BASE, **MIXED[1], "lr_g": 7e-4, "beta1": 0.3, "d_steps_per_g": 1})
    save_checkpoint(source, tmp_path / "source", gather_rng(source), None)
    restored = setup(new, splits)
    load_checkpoint(restored, tmp_path / "source", rank=0)
    copied = setup(new, splits)
    copy_state(copied, source)
    assert_same([restored], [copied], atol=0, sums=False)
    for gan in (restored, copied):
        assert [g["lr"] for g in gan.opt_g.param_groups] == [7e-4]
        assert gan.opt_d.param_groups[0]["betas"] == (0.3, 0.9)
    pack.load(3, copied)  # the exploit: member 3 goes on from member 1's weights with new values
    for _ in range(2):
        pack.step()
        train_step(restored)
    pack.export()
    assert_same([restored], [pack.members[3]], atol=1e-6, sums=False)


def test_a_member_that_sits_out_keeps_its_state_and_the_others_train_as_alone(splits):
    """A diverged member of a pack sits out for good (Pack.out): nothing of it changes, no draw of its
    streams, and the other members train on exactly as they would alone."""
    alone, packed = gans(MIXED, splits), gans(MIXED, splits)
    pack = Pack(packed)
    pack.step()
    train_step(alone[0]), train_step(alone[1]), train_step(alone[3])
    pack.export()
    frozen = {k: v.clone() for k, v in unwrap(packed[2].g).state_dict().items()}
    noise = packed[2].noise.get_state()
    pack.out.add(2)  # the member with 3 D steps: the pack now takes 2 D updates a step
    for _ in range(3):
        flags = pack.step()
        for k in (0, 1, 3):
            train_step(alone[k])
    pack.export()
    assert not bool(flags[2])
    assert all(torch.equal(t, frozen[k]) for k, t in unwrap(packed[2].g).state_dict().items())
    assert torch.equal(packed[2].noise.get_state(), noise) and packed[2].step == 1
    assert_same([alone[k] for k in (0, 1, 3)], [packed[k] for k in (0, 1, 3)], atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a pack on a GPU needs a CUDA GPU")
@pytest.mark.parametrize("members", [MIXED, WGAN], ids=["mixed", "wgan-gp"])
def test_a_pack_on_a_gpu_stays_with_each_member_alone_there(members):
    """The same on a GPU (its tensors, masks and counts on the device), 10 updates, cuDNN deterministic."""
    before = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        cuda_splits = load_splits(TrainConfig.from_dict({**BASE, "device": "cuda"}))
        assert_same(*alone_and_packed([{**m, "device": "cuda"} for m in members], cuda_splits, 10), atol=1e-4)
    finally:
        torch.backends.cudnn.deterministic = before
