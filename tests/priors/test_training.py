"""Training: loss decreases, seeded resume is bit-for-bit, checkpoints are atomic."""

import json

import pytest
import torch

from diffinv.priors.checkpoints import LearnedPrior, load_prior
from diffinv.priors.training import TrainConfig, train

TINY_UNET = {"base_width": 8, "width_mults": [1, 2], "emb_dim": 16, "attention": False}


def _cfg(**kw):
    base = dict(dataset="disks", image_size=8, steps=12, batch_size=8, lr=2e-3, warmup=2,
                pool_size=64, pool_refresh=5, checkpoint_every=4, log_every=2,
                ema_half_life=5.0, eval_images=8, grid_images=4, unet=TINY_UNET)
    base.update(kw)
    return TrainConfig(**base)


def _states(out):
    return torch.load(out / "checkpoint.pt", weights_only=True)


def test_resume_reproduces_uninterrupted_run_bit_for_bit(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(_cfg(), a, device="cpu", progress=False, finalize=False)
    train(_cfg(), b, device="cpu", progress=False, finalize=False, stop_after=6)
    assert _states(b)["step"] == 6
    train(_cfg(), b, device="cpu", progress=False, finalize=False)
    sa, sb = _states(a), _states(b)
    assert sa["step"] == sb["step"] == 12
    for key in ("net",):
        for name in sa[key]:
            assert torch.equal(sa[key][name], sb[key][name]), name
    for name in sa["ema"]["model"]:
        assert torch.equal(sa["ema"]["model"][name], sb["ema"]["model"][name]), name
    assert torch.equal(sa["rng"], sb["rng"])
    assert [e["loss"] for e in sa["log"]] == [e["loss"] for e in sb["log"]]
    lines = (b / "training_log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [2, 4, 6, 8, 10, 12]


def test_resume_refuses_different_settings(tmp_path):
    train(_cfg(steps=2), tmp_path, device="cpu", progress=False, finalize=False)
    with pytest.raises(ValueError, match="differs"):
        train(_cfg(steps=4, lr=1e-2), tmp_path, device="cpu", progress=False)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    train(_cfg(steps=4), tmp_path, device="cpu", progress=False, finalize=False)
    before = _states(tmp_path)
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(steps=8), tmp_path, device="cpu", progress=False, finalize=False)
    monkeypatch.setattr(torch, "save", real_save)
    after = _states(tmp_path)  # still the complete step-4 checkpoint
    assert after["step"] == before["step"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "training_log.jsonl"]


def test_training_decreases_loss_and_writes_prior(tmp_path):
    cfg = _cfg(image_size=16, steps=60, batch_size=16, log_every=10, checkpoint_every=60,
               pool_refresh=100, pool_size=128, lr=3e-3, warmup=5)
    prior = train(cfg, tmp_path, device="cpu", progress=False)
    log = [json.loads(ln) for ln in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.6 * log[0]["loss"]
    assert set(log[0]["loss_per_sigma_band"]) == {"0-0.05", "0.05-0.2", "0.2-0.5", "0.5-1",
                                                  "1-2", "2-inf"}
    for name in ("prior.pt", "prior.json", "samples.png", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    loaded = load_prior(tmp_path / "prior.pt")
    assert isinstance(loaded, LearnedPrior)
    assert loaded.image_shape == (1, 16, 16) and loaded.data_range == (0.0, 1.0)
    x = loaded.training_samples(3, seed=5)
    assert x.shape == (3, 1, 16, 16) and torch.equal(x, loaded.training_samples(3, seed=5))
    s = torch.full((3,), 0.2)
    torch.testing.assert_close(loaded(x, s), prior.cpu()(x, s))
    card = json.loads((tmp_path / "prior.json").read_text())
    assert set(card["heldout_denoising_psnr_db"]) == {"0.05", "0.2", "0.5", "1"}
    assert card["steps"] == 60 and card["licence"]


def test_bad_settings():
    with pytest.raises(ValueError, match="dataset"):
        _cfg(dataset="nope").validate()
    with pytest.raises(ValueError, match="steps"):
        _cfg(steps=0).validate()


def test_init_fine_tunes_from_a_prior(tmp_path):
    unet = {**TINY_UNET, "attention": True, "attention_window": 2}
    train(_cfg(steps=6, unet=unet), tmp_path / "a", device="cpu", progress=False,
          finalize=False)
    init = str(tmp_path / "a" / "checkpoint.pt")  # a training checkpoint serves as a prior
    start = load_prior(init)
    # global attention, larger images, another seed: the weights and normalisation carry over
    tuned = _cfg(steps=1, lr=1e-12, warmup=1, image_size=12, seed=4,
                 grid_images=0, unet={**unet, "attention_window": 0}, init=init)
    prior = train(tuned, tmp_path / "b", device="cpu", progress=False)
    assert prior.net.config.attention_window == 0
    assert prior.sigma_data == start.sigma_data and prior.scale == start.scale
    for name, w in start.net.state_dict().items():
        torch.testing.assert_close(prior.net.state_dict()[name], w, atol=1e-6, rtol=0)
    card = json.loads((tmp_path / "b" / "prior.json").read_text())
    assert card["initialised_from"] == init
    assert card["image_shape"] == [1, 12, 12]


def test_init_refuses_other_layers_or_units(tmp_path):
    train(_cfg(steps=2), tmp_path / "a", device="cpu", progress=False, finalize=False)
    init = str(tmp_path / "a" / "checkpoint.pt")
    with pytest.raises(ValueError, match="init: .*base_width"):
        train(_cfg(steps=1, init=init, unet={**TINY_UNET, "base_width": 4}), tmp_path / "b",
              device="cpu", progress=False)
    with pytest.raises(ValueError, match="init: .*trained on"):
        train(_cfg(steps=1, init=init, dataset="ct-phantom"), tmp_path / "c", device="cpu",
              progress=False)
