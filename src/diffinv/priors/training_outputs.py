"""Files a training run writes: checkpoint and log, model card, prior, sample grid.

All writes are atomic (:func:`diffinv.io.atomic_write`); in a multi-process run only rank 0
calls these.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from ..extras import require
from ..io import atomic_write
from .checkpoints import LearnedPrior, save_prior
from .evaluation import SIGMAS_REL, denoising_psnr

__all__ = ["save_state", "model_card", "finalize", "save_grid"]


def save_state(path, out, cfg, norm, model, ema, opt, g, step, log) -> None:
    """Write the resumable training state ``checkpoint.pt`` and ``training_log.jsonl``."""
    prior = LearnedPrior(ema.model, model.checkpoint_dict()["preconditioning"], model.data_info)
    state = {
        "format": "diffinv-train", "config": asdict(cfg), "normalisation": norm, "step": step,
        "net": model.net.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
        "rng": g.get_state(), "log": log, "prior": prior.checkpoint_dict(),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    text = "".join(json.dumps(e) + "\n" for e in log)
    atomic_write(out / "training_log.jsonl", lambda tmp: Path(tmp).write_text(text))


def model_card(cfg, prior: LearnedPrior, steps: int, psnr: dict, source=None,
               norm: dict | None = None, world_size: int = 1) -> dict:
    """The model card of a trained prior (JSON-serialisable).

    ``source`` is the run's data source (:mod:`diffinv.priors.data_sources`); ``norm`` the
    normalisation it computed (recorded so that measured data can be put on the prior's
    scale: ``u = (x - offset) / scale`` in the network, ``x`` in ``units``).
    """
    import diffinv

    from .data_sources import make_source

    src = source if source is not None else make_source(cfg)
    info = src.card()
    n_params = sum(p.numel() for p in prior.net.parameters())
    card = {
        "name": info.pop("name"), "format": "diffinv-prior",
        "diffinv_version": diffinv.__version__, **info,
        "units": prior.units, "data_range": list(prior.data_range),
        "image_shape": list(prior.image_shape), "channels": prior.image_shape[0],
        "size_agnostic": "fully convolutional: any H x W >= 1 (trained at "
                         f"{prior.image_shape[1]}x{prior.image_shape[2]})",
        "steps": steps, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "processes": world_size, "parameters": n_params, "unet": prior.net.config.to_dict(),
        "sigma_data_normalised": prior.sigma_data,
        "heldout_denoising_psnr_db": {f"{k:g}": round(v, 2) for k, v in psnr.items()},
        "psnr_convention": "sigma and PSNR peak relative to data_range width (hi - lo); "
                           + info.pop("psnr_convention_images"),
        "training": f"EDM loss, log-normal sigma (P_mean={cfg.p_mean:g}, P_std={cfg.p_std:g}), "
                    f"Adam lr {cfg.lr:g}, EMA half-life {cfg.ema_half_life:g} steps",
    }
    card.pop("psnr_convention_images", None)
    if cfg.init:
        card["initialised_from"] = cfg.init
    if norm is not None:
        card["normalisation"] = {k: v for k, v in norm.items()}
        card["normalisation"]["convention"] = ("network frame u = (x - offset) / scale; x in "
                                               "units, data_range = [offset - scale, offset "
                                               "+ scale]")
    return card


def finalize(cfg, out: Path, prior: LearnedPrior, steps: int, source, norm: dict,
             world_size: int = 1) -> None:
    """Held-out PSNR, model card, ``prior.pt``/``prior.json`` and ``samples.png``."""
    from .unconditional import sample_prior

    held = source.heldout(cfg.eval_images)
    psnr = denoising_psnr(prior, held, prior.data_range, SIGMAS_REL, seed=cfg.seed)
    prior.card = model_card(cfg, prior, steps, psnr, source, norm, world_size)
    save_prior(prior, out / "prior.pt")
    card_text = json.dumps(prior.card, indent=2)
    atomic_write(out / "prior.json", lambda tmp: Path(tmp).write_text(card_text))
    if cfg.grid_images > 0:
        samples = sample_prior(prior, cfg.grid_images, generator=torch.Generator().manual_seed(
            cfg.seed))
        save_grid(samples, out / "samples.png", prior.data_range)


def save_grid(images: torch.Tensor, path: str | Path, data_range=None) -> Path:
    """Write a PNG grid of ``(n, C, H, W)`` images (2 channels shown as magnitude)."""
    image = require("matplotlib.image", purpose="sample grids")  # no pyplot, no backend change

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
    return atomic_write(path, lambda tmp: image.imsave(tmp, grid.numpy(), vmin=lo, vmax=hi,
                                                     cmap="afmhot", format="png"), suffix=".png")
