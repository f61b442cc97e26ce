r"""Train a UNet denoiser prior with the EDM loss (Karras et al. 2022, section 5).

For each clean image ``u`` (normalised to about ``[-1, 1]``) a noise level is drawn
log-normally, ``ln sigma ~ N(P_mean, P_std^2)``, and the loss is

.. math:: \lambda(\sigma)\, \| D_\theta(u + \sigma\epsilon, \sigma) - u \|^2 / n_\text{pix},
          \qquad \lambda(\sigma) = (\sigma^2 + \sigma_d^2) / (\sigma \sigma_d)^2.

Training draws fresh images from the named data set (:mod:`diffinv.datasets.registry`) in
pools of ``pool_size`` images, regenerated every ``pool_refresh`` steps from seeds derived
from ``seed``; every random number comes from one CPU :class:`torch.Generator` whose state is
checkpointed, so an interrupted run resumed from its last checkpoint reproduces the
uninterrupted run bit for bit on the same device.

Files written to ``out_dir`` (all atomically): ``checkpoint.pt`` (training state, every
``checkpoint_every`` steps and at the end), ``training_log.jsonl`` (one line per
``log_every`` steps: mean loss overall and per sigma band), ``prior.pt`` (the EMA prior in
our checkpoint format), ``prior.json`` (its model card) and ``samples.png`` (a grid of
unconditional samples).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..datasets.registry import estimate_range, get_dataset
from ..extras import require
from ..io import atomic_write
from .checkpoints import LearnedPrior, save_prior
from .edm import edm_loss_weight
from .ema import EMA
from .evaluation import SIGMAS_REL, denoising_psnr
from .networks.unet import UNet, UNetConfig

__all__ = ["TrainConfig", "train", "SIGMA_BANDS"]

#: Edges of the sigma bands (normalised frame) in which the training log reports the loss.
SIGMA_BANDS = (0.0, 0.05, 0.2, 0.5, 1.0, 2.0, math.inf)


@dataclass
class TrainConfig:
    """Settings of a training run (saved in the checkpoint and the model card).

    Attributes
    ----------
    dataset : str
        Registered data set name.
    image_size : int
        Images are ``image_size x image_size``.
    steps : int
        Optimiser steps in total.
    batch_size, lr : int, float
        Adam with ``lr``, linear warm-up over ``warmup`` steps, gradient clipping at
        ``grad_clip``.
    ema_half_life : float
        EMA half-life in steps.
    seed : int
        Seeds the weights, the data pools, the noise and sigma draws.
    p_mean, p_std : float
        Log-normal sigma distribution (normalised frame).
    pool_size, pool_refresh : int
        Training images per pool and steps between pool refreshes.
    checkpoint_every, log_every : int
    sigma_min, sigma_max : float
        Noise range of the prior, normalised frame (stored in user units).
    unet : dict
        :class:`UNetConfig` settings (``channels`` is taken from the data set).
    """

    dataset: str = "disks"
    image_size: int = 32
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 200
    grad_clip: float = 1.0
    ema_half_life: float = 300.0
    seed: int = 0
    p_mean: float = -1.2
    p_std: float = 1.2
    pool_size: int = 4096
    pool_refresh: int = 1000
    checkpoint_every: int = 250
    log_every: int = 50
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    eval_images: int = 256
    grid_images: int = 16
    unet: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        for name in ("image_size", "steps", "batch_size", "pool_size", "pool_refresh",
                     "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr}")
        get_dataset(self.dataset)


def _pool(cfg: TrainConfig, index: int, scale_info: dict | None) -> torch.Tensor:
    spec = get_dataset(cfg.dataset)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * index + 1)
    x = spec.sample(cfg.pool_size, cfg.image_size, g)
    if scale_info is None:
        return x
    return (x - scale_info["offset"]) / scale_info["scale"]


def _normalisation(cfg: TrainConfig) -> dict:
    """Data range, offset/scale to [-1, 1] and sigma_data, from the spec or a first pool."""
    spec = get_dataset(cfg.dataset)
    x = _pool(cfg, 0, None)
    lo, hi = spec.data_range or estimate_range(x, spec.symmetric)
    if not hi > lo:
        raise ValueError(f"dataset {cfg.dataset!r}: degenerate value range ({lo}, {hi})")
    offset, scale = 0.5 * (lo + hi), 0.5 * (hi - lo)
    sigma_data = float(((x - offset) / scale).std())
    return {"data_range": [float(lo), float(hi)], "offset": float(offset),
            "scale": float(scale), "sigma_data": sigma_data}


def _build(cfg: TrainConfig, norm: dict) -> tuple[UNet, dict, dict]:
    spec = get_dataset(cfg.dataset)
    unet_cfg = UNetConfig.from_dict({**cfg.unet, "channels": spec.channels})
    torch.manual_seed(cfg.seed)
    net = UNet(unet_cfg)
    precond = {"sigma_data": norm["sigma_data"], "offset": norm["offset"],
               "scale": norm["scale"], "sigma_min": cfg.sigma_min * norm["scale"],
               "sigma_max": cfg.sigma_max * norm["scale"]}
    data = {"dataset": cfg.dataset, "image_size": cfg.image_size, "channels": spec.channels,
            "units": spec.units, "data_range": norm["data_range"], "source": spec.source,
            "is_complex": spec.symmetric and spec.channels % 2 == 0}
    return net, precond, data


def _band_index(sigma: torch.Tensor) -> torch.Tensor:
    edges = torch.tensor(SIGMA_BANDS[1:-1], dtype=sigma.dtype)
    return torch.bucketize(sigma, edges, right=True)


def _band_names() -> list[str]:
    return [f"{SIGMA_BANDS[i]:g}-{SIGMA_BANDS[i + 1]:g}" for i in range(len(SIGMA_BANDS) - 1)]


def _lr(cfg: TrainConfig, step: int) -> float:
    return cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    finalize: bool = True,
) -> LearnedPrior:
    """Train (or resume) a prior; see the module docstring for the files written.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path
        Created if missing.  If it holds a ``checkpoint.pt`` and ``resume`` is true, the run
        continues from it (its saved settings must match ``cfg``).
    device : optional
        Defaults to CUDA when available, else CPU.
    progress : bool
        Show a progress bar (tqdm).
    stop_after : int, optional
        Stop (after checkpointing) once this many steps are done in total, as if
        interrupted; used to test resumption.
    finalize : bool
        Evaluate, write the prior, its card and the sample grid at the end.

    Returns
    -------
    LearnedPrior
        The EMA prior (on ``device``).
    """
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    ckpt_path = out / "checkpoint.pt"
    state = None
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state.get("format") != "diffinv-train":
            raise ValueError(f"out_dir: {ckpt_path} is not a diffinv training checkpoint")
        saved = dict(state["config"])
        mine = asdict(cfg)
        for key in ("steps", "checkpoint_every", "log_every", "eval_images", "grid_images"):
            saved.pop(key, None)
            mine.pop(key, None)
        if saved != mine:
            raise ValueError(f"cfg: differs from the run being resumed in {out}; "
                             "use another out_dir or resume=False")
        norm = state["normalisation"]
    else:
        norm = _normalisation(cfg)
    net, precond, data = _build(cfg, norm)
    model = LearnedPrior(net, precond, data).to(dev)
    model.train()
    ema = EMA(model.net, cfg.ema_half_life)
    opt = torch.optim.Adam(model.net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    step, log = 0, []
    if state is not None:
        model.net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        g.set_state(state["rng"])
        step, log = int(state["step"]), list(state["log"])
    ema.model.to(dev)
    n_bands = len(SIGMA_BANDS) - 1
    band_sum = torch.zeros(n_bands, dtype=torch.float64)
    band_cnt = torch.zeros(n_bands, dtype=torch.float64)
    pool_index, pool = -1, None
    t0 = time.time()
    last = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.dataset}", unit="step")
    while step < last:
        if step // cfg.pool_refresh != pool_index:
            pool_index = step // cfg.pool_refresh
            pool = _pool(cfg, pool_index, norm)
        idx = torch.randint(0, pool.shape[0], (cfg.batch_size,), generator=g)
        u = pool[idx]
        sigma = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(cfg.batch_size, generator=g))
        eps = torch.randn(u.shape, generator=g)
        u, sigma, eps = u.to(dev), sigma.to(dev), eps.to(dev)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        den = model.normalised(u + sigma[:, None, None, None] * eps, sigma)
        per_item = ((den - u) ** 2).flatten(1).mean(1) * edm_loss_weight(sigma, norm["sigma_data"])
        loss = per_item.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.net.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(model.net)
        step += 1
        bands = _band_index(sigma.detach().cpu().double())
        band_sum.index_add_(0, bands, per_item.detach().cpu().double())
        band_cnt.index_add_(0, bands, torch.ones_like(bands, dtype=torch.float64))
        if step % cfg.log_every == 0 or step == last:
            means = (band_sum / band_cnt.clamp(min=1)).tolist()
            entry = {"step": step, "loss": float(band_sum.sum() / band_cnt.sum().clamp(min=1)),
                     "loss_per_sigma_band": {
                         name: (m if c > 0 else None)
                         for name, m, c in zip(_band_names(), means, band_cnt.tolist())},
                     "lr": _lr(cfg, step - 1), "wall_s": round(time.time() - t0, 2)}
            log.append(entry)
            band_sum.zero_()
            band_cnt.zero_()
            if bar is not None:
                bar.set_postfix(loss=f"{entry['loss']:.4f}")
        if step % cfg.checkpoint_every == 0 or step == last:
            _save_state(ckpt_path, out, cfg, norm, model, ema, opt, g, step, log)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    prior = LearnedPrior(ema.model, precond, data).to(dev)
    if finalize and step >= cfg.steps:
        _finalize(cfg, out, prior, step)
    return prior


def _save_state(path, out, cfg, norm, model, ema, opt, g, step, log) -> None:
    prior = LearnedPrior(ema.model, model.checkpoint_dict()["preconditioning"], model.data_info)
    state = {
        "format": "diffinv-train", "config": asdict(cfg), "normalisation": norm, "step": step,
        "net": model.net.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
        "rng": g.get_state(), "log": log, "prior": prior.checkpoint_dict(),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    text = "".join(json.dumps(e) + "\n" for e in log)
    atomic_write(out / "training_log.jsonl", lambda tmp: Path(tmp).write_text(text))


def model_card(cfg: TrainConfig, prior: LearnedPrior, steps: int, psnr: dict) -> dict:
    """The model card of a trained prior (JSON-serialisable)."""
    import diffinv

    spec = get_dataset(cfg.dataset)
    n_params = sum(p.numel() for p in prior.net.parameters())
    return {
        "name": cfg.dataset, "format": "diffinv-prior", "diffinv_version": diffinv.__version__,
        "dataset": cfg.dataset, "generator": spec.source, "description": spec.description,
        "units": spec.units, "data_range": list(prior.data_range),
        "image_shape": list(prior.image_shape), "channels": prior.image_shape[0],
        "steps": steps, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "parameters": n_params, "unet": prior.net.config.to_dict(),
        "sigma_data_normalised": prior.sigma_data,
        "heldout_denoising_psnr_db": {f"{k:g}": round(v, 2) for k, v in psnr.items()},
        "psnr_convention": "sigma and PSNR peak relative to data_range width (hi - lo); "
                           f"{cfg.eval_images} held-out images (seed 10_000 + training seed)",
        "licence": "BSD-3-Clause (weights trained by diffinv on synthetic data)",
        "training": f"EDM loss, log-normal sigma (P_mean={cfg.p_mean:g}, P_std={cfg.p_std:g}), "
                    f"Adam lr {cfg.lr:g}, EMA half-life {cfg.ema_half_life:g} steps",
    }


def _finalize(cfg: TrainConfig, out: Path, prior: LearnedPrior, steps: int) -> None:
    from .unconditional import sample_prior

    spec = get_dataset(cfg.dataset)
    held = spec.sample(cfg.eval_images, cfg.image_size,
                       torch.Generator().manual_seed(10_000 + cfg.seed))
    psnr = denoising_psnr(prior, held, prior.data_range, SIGMAS_REL, seed=cfg.seed)
    prior.card = model_card(cfg, prior, steps, psnr)
    save_prior(prior, out / "prior.pt")
    card_text = json.dumps(prior.card, indent=2)
    atomic_write(out / "prior.json", lambda tmp: Path(tmp).write_text(card_text))
    if cfg.grid_images > 0:
        samples = sample_prior(prior, cfg.grid_images, generator=torch.Generator().manual_seed(
            cfg.seed))
        save_grid(samples, out / "samples.png", prior.data_range)


def save_grid(images: torch.Tensor, path: str | Path, data_range=None) -> Path:
    """Write a PNG grid of ``(n, C, H, W)`` images (2 channels shown as magnitude)."""
    matplotlib = require("matplotlib", purpose="sample grids")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = images.detach().cpu().double()
    x = x.pow(2).sum(1).sqrt() if x.shape[1] == 2 else x[:, 0]
    n = x.shape[0]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    h, w = x.shape[-2:]
    grid = torch.full((rows * (h + 1), cols * (w + 1)), float("nan"), dtype=torch.float64)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = x[i]
    lo, hi = (0.0, float(x.max())) if images.shape[1] == 2 or data_range is None else data_range
    return atomic_write(path, lambda tmp: plt.imsave(tmp, grid.numpy(), vmin=lo, vmax=hi,
                                                     cmap="afmhot", format="png"), suffix=".png")
