r"""Train a UNet denoiser prior with the EDM loss (Karras et al. 2022, section 5).

For each clean image ``u`` (normalised to about ``[-1, 1]``) a noise level is drawn
log-normally, ``ln sigma ~ N(P_mean, P_std^2)``, and the loss is

.. math:: \lambda(\sigma)\, \| D_\theta(u + \sigma\epsilon, \sigma) - u \|^2 / n_\text{pix},
          \qquad \lambda(\sigma) = (\sigma^2 + \sigma_d^2) / (\sigma \sigma_d)^2.

Training draws images from a data source (:mod:`diffinv.priors.data_sources`): a named
generator (:mod:`diffinv.datasets.registry`) or random crops streamed from the user's files
(``data``: fastMRI, DICOM, NIfTI, FITS, NumPy, pictures), in pools of ``pool_size`` images,
renewed every ``pool_refresh`` steps from seeds derived from ``seed``; every random number
comes from one CPU :class:`torch.Generator` whose state is checkpointed, so an interrupted
run resumed from its last checkpoint reproduces the uninterrupted run bit for bit on the
same device.

Multi-process training (``torchrun``, :mod:`diffinv.priors.distributed`): every rank draws
the same global batch indices, noise levels and noise from the shared generator and trains
on its slice ``rank * B/N : (rank + 1) * B/N`` of the global batch of ``B = batch_size``;
DistributedDataParallel averages the gradients, so with a registered generator (the same
pool on every rank) the run follows the single-process run up to floating-point summation
order.  With files each rank's pool comes from its own shard of the training files.  The
loss log is summed over ranks; only rank 0 writes files and shows progress.  The checkpoint
holds no per-rank state, so a run resumes with any number of processes.  On CUDA the
forward pass runs under bf16 autocast (``amp``).

Files written to ``out_dir`` (all atomically): ``checkpoint.pt`` (training state, every
``checkpoint_every`` steps and at the end), ``training_log.jsonl`` (one line per
``log_every`` steps: mean loss overall and per sigma band), ``prior.pt`` (the EMA prior in
our checkpoint format), ``prior.json`` (its model card) and ``samples.png`` (a grid of
unconditional samples).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..datasets.registry import get_dataset
from . import distributed
from .checkpoints import LearnedPrior
from .data_sources import make_source
from .edm import EDMDenoiser, edm_loss_weight
from .ema import EMA
from .networks.unet import UNet, UNetConfig
from .training_outputs import finalize as _finalize_run
from .training_outputs import model_card, save_grid, save_state

__all__ = ["TrainConfig", "train", "SIGMA_BANDS", "model_card", "save_grid"]

#: Edges of the sigma bands (normalised frame) in which the training log reports the loss.
SIGMA_BANDS = (0.0, 0.05, 0.2, 0.5, 1.0, 2.0, math.inf)


@dataclass
class TrainConfig:
    """Settings of a training run (saved in the checkpoint and the model card).

    Attributes
    ----------
    dataset : str
        Registered data set name (ignored when ``data`` is given).
    image_size : int
        Images are ``image_size x image_size`` (the crop size for ``data`` unless ``crop``).
    data : list of str
        Image files or folders to train on instead of a registered generator.
    crop : list of int, optional
        ``[h, w]`` crop size for ``data`` (non-square allowed).
    val_fraction, split_by : float, str
        Share of files (``"file"``) or subjects = parent folders (``"subject"``) held out
        for validation.
    val_data : list of str
        Explicit validation files or folders (replaces the split).
    fastmri : str
        fastMRI HDF5 images: ``"single"``, ``"rss"`` or ``"complex"`` (2 channels).
    units : str
        Overrides the units the files declare (recorded in the model card).
    scan_slices : int, optional
        Slices per file read by the normalisation scan (evenly spaced; all when ``None``).
    amp : bool
        bf16 autocast on CUDA (ignored on the CPU).
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
    init : str
        Fine-tuning: a shipped prior name or a prior checkpoint path whose weights start the
        network and its EMA, and whose normalisation (offset, scale, ``sigma_data``) the run
        keeps, so the preconditioning matches the weights.  Its UNet must have the same
        layers as ``unet`` (``attention_window`` may differ: it changes no weight).  Empty:
        random initialisation.  Ignored when resuming (the checkpoint holds the weights).
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
    data: list = field(default_factory=list)
    crop: list | None = None
    val_fraction: float = 0.1
    val_data: list = field(default_factory=list)
    split_by: str = "file"
    fastmri: str = "rss"
    units: str = ""
    scan_slices: int | None = 16
    amp: bool = True
    init: str = ""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        for name in ("image_size", "steps", "batch_size", "pool_size", "pool_refresh",
                     "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr}")
        if self.crop is not None and (len(self.crop) != 2 or min(int(c) for c in self.crop) < 1):
            raise ValueError(f"crop: expected [height, width] in pixels, got {self.crop}")
        if self.split_by not in ("file", "subject"):
            raise ValueError(f"split_by: expected 'file' or 'subject', got {self.split_by!r}")
        if not self.data:
            get_dataset(self.dataset)


def _build(cfg: TrainConfig, norm: dict, source) -> tuple[UNet, dict, dict]:
    unet_cfg = UNetConfig.from_dict({**cfg.unet, "channels": source.channels})
    torch.manual_seed(cfg.seed)
    net = UNet(unet_cfg)
    precond = {"sigma_data": norm["sigma_data"], "offset": norm["offset"],
               "scale": norm["scale"], "sigma_min": cfg.sigma_min * norm["scale"],
               "sigma_max": cfg.sigma_max * norm["scale"]}
    h, w = source.shape
    data = {**source.data_info(), "image_size": h if h == w else [h, w],
            "channels": source.channels, "units": source.units,
            "data_range": norm["data_range"], "is_complex": source.is_complex}
    return net, precond, data


def _init_weights(cfg: TrainConfig, source) -> tuple[dict, dict]:
    """The network weights and normalisation of the prior ``cfg.init`` starts from."""
    from .checkpoints import load

    start = load(cfg.init)
    if start.units != source.units:
        raise ValueError(f"init: {cfg.init!r} was trained on {start.units!r}, this run's data "
                         f"are {source.units!r}")
    mine = UNetConfig.from_dict({**cfg.unet, "channels": source.channels}).to_dict()
    theirs = start.net.config.to_dict()
    differ = sorted(k for k in mine if k != "attention_window" and mine[k] != theirs.get(k))
    if differ:
        raise ValueError(f"init: the UNet of {cfg.init!r} differs from this run's in "
                         + ", ".join(f"{k} ({theirs.get(k)!r} there, {mine[k]!r} here)"
                                     for k in differ))
    norm = {"data_range": [float(v) for v in start.data_range], "offset": float(start.offset),
            "scale": float(start.scale), "sigma_data": float(start.sigma_data),
            "init": cfg.init}
    return start.net.state_dict(), norm


def _resumable_config(saved: dict, cfg: TrainConfig) -> bool:
    """Whether a saved config equals ``cfg`` up to run-length and reporting settings
    (settings added after the checkpoint was written count as their defaults)."""
    defaults = {f.name: getattr(TrainConfig(), f.name) for f in fields(TrainConfig)}
    saved = {**defaults, **saved}
    mine = asdict(cfg)
    for key in ("steps", "checkpoint_every", "log_every", "eval_images", "grid_images"):
        saved.pop(key, None)
        mine.pop(key, None)
    return saved == mine


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
        Defaults to CUDA when available, else CPU (under ``torchrun``: this rank's GPU).
    progress : bool
        Show a progress bar (tqdm; rank 0 only).
    stop_after : int, optional
        Stop (after checkpointing) once this many steps are done in total, as if
        interrupted; used to test resumption.
    finalize : bool
        Evaluate, write the prior, its card and the sample grid at the end.

    Returns
    -------
    LearnedPrior
        The EMA prior (on this rank's device).
    """
    cfg.validate()
    world = distributed.setup(device)
    try:
        return _train(cfg, Path(out_dir), resume, world, progress, stop_after, finalize)
    finally:
        distributed.cleanup(world)


def _load_state(ckpt_path: Path, cfg: TrainConfig, out: Path) -> dict:
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if state.get("format") != "diffinv-train":
        raise ValueError(f"out_dir: {ckpt_path} is not a diffinv training checkpoint")
    if not _resumable_config(dict(state["config"]), cfg):
        raise ValueError(f"cfg: differs from the run being resumed in {out}; "
                         "use another out_dir or resume=False")
    return state


def _train(cfg, out, resume, world, progress, stop_after, finalize) -> LearnedPrior:
    if cfg.batch_size % world.world_size:
        raise ValueError(f"batch_size: the global batch {cfg.batch_size} must be divisible by "
                         f"the number of processes {world.world_size}")
    dev = world.device
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    distributed.barrier(world)
    ckpt_path = out / "checkpoint.pt"
    state = _load_state(ckpt_path, cfg, out) if resume and ckpt_path.is_file() else None
    source = make_source(cfg)
    start = None
    if state is not None:
        norm = state["normalisation"]
    elif cfg.init:
        start, norm = _init_weights(cfg, source)
    else:
        norm = source.normalisation()
    net, precond, data = _build(cfg, norm, source)
    if start is not None:
        net.load_state_dict(start)
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
    trainer = model
    if world.world_size > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model.net, device_ids=[dev.index] if dev.type == "cuda" else None)
        trainer = EDMDenoiser(ddp, model.sigma_data)
    amp = cfg.amp and dev.type == "cuda"
    n_bands = len(SIGMA_BANDS) - 1
    band_sum = torch.zeros(n_bands, dtype=torch.float64)
    band_cnt = torch.zeros(n_bands, dtype=torch.float64)
    pool_index, pool = -1, None
    b = cfg.batch_size // world.world_size
    mine = slice(world.rank * b, (world.rank + 1) * b)
    t0 = time.time()
    last = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    bar = None
    if progress and world.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step")
    while step < last:
        if step // cfg.pool_refresh != pool_index:
            pool_index = step // cfg.pool_refresh
            pool = (source.pool(pool_index, world.rank, world.world_size) - norm["offset"]
                    ) / norm["scale"]
        idx = torch.randint(0, pool.shape[0], (cfg.batch_size,), generator=g)
        u = pool[idx]
        sigma = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(cfg.batch_size, generator=g))
        eps = torch.randn(u.shape, generator=g)
        u, sigma, eps = u[mine].to(dev), sigma[mine].to(dev), eps[mine].to(dev)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            den = trainer.normalised(u + sigma[:, None, None, None] * eps, sigma)
        per_item = ((den.float() - u) ** 2).flatten(1).mean(1) * edm_loss_weight(
            sigma, norm["sigma_data"])
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
            sums = distributed.all_reduce_sum(torch.cat([band_sum, band_cnt]), world)
            b_sum, b_cnt = sums[:n_bands], sums[n_bands:]
            means = (b_sum / b_cnt.clamp(min=1)).tolist()
            entry = {"step": step, "loss": float(b_sum.sum() / b_cnt.sum().clamp(min=1)),
                     "loss_per_sigma_band": {
                         name: (m if c > 0 else None)
                         for name, m, c in zip(_band_names(), means, b_cnt.tolist())},
                     "lr": _lr(cfg, step - 1), "wall_s": round(time.time() - t0, 2)}
            log.append(entry)
            band_sum.zero_()
            band_cnt.zero_()
            if bar is not None:
                bar.set_postfix(loss=f"{entry['loss']:.4f}")
        if (step % cfg.checkpoint_every == 0 or step == last) and world.is_main:
            save_state(ckpt_path, out, cfg, norm, model, ema, opt, g, step, log)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    prior = LearnedPrior(ema.model, precond, data).to(dev)
    if finalize and step >= cfg.steps and world.is_main:
        _finalize_run(cfg, out, prior, step, source, norm, world.world_size)
    distributed.barrier(world)
    return prior
