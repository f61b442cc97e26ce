r"""Adapter for Hugging Face ``diffusers`` checkpoints: ``UNet2DModel`` + DDPM/DDIM scheduler.

Many published medical and astronomy diffusion models are a ``UNet2DModel`` saved with
``save_pretrained`` beside a ``DDPMScheduler`` or ``DDIMScheduler`` config.  Both schedulers
define the variance-preserving process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` with
``abar_t = scheduler.alphas_cumprod[t]``; the adapter reuses :class:`~diffinv.priors.
adapters.VPDenoiser`'s map ``sigma_t = sqrt((1 - abar_t) / abar_t)`` between our
variance-exploding ``(x, sigma)`` and ``(x_t, t)`` (fractional timesteps by interpolation
in ``log sigma``; the sinusoidal time embedding of ``UNet2DModel`` accepts them), and the
scheduler's ``prediction_type``:

* ``"epsilon"``: ``D = x - sigma * eps_hat``;
* ``"v_prediction"`` (Salimans & Ho 2022): ``D = sqrt(abar) x_t - sqrt(1 - abar) v_hat``;
* ``"sample"``: ``D = x0_hat``.

``D`` equals the ``pred_original_sample`` of the scheduler's own ``step`` at grid timesteps
(tested).  Images whose size is not a multiple of the UNet's downsampling factor are padded
and cropped (:func:`diffinv.priors.networks.unet.run_padded`).  ``diffusers`` is optional:
``pip install 'diffinv[diffusers]'``; nothing is downloaded (local folders only).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..extras import require
from .adapters import EpsilonPredictionPrior, VPDenoiser, VPredictionPrior
from .networks.unet import run_padded

__all__ = ["SamplePredictionPrior", "DiffusersUNet", "diffusers_prior",
           "diffusers_prior_from_pretrained"]


class SamplePredictionPrior(VPDenoiser):
    """A VP network predicting ``x0`` directly: ``D(x, sigma) = x0_hat(x_t, t(sigma))``."""

    def denoise_normalised(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (u.ndim - 1)
        x_t = u / torch.sqrt(1 + s.reshape(shape) ** 2)
        return self._net(x_t, self.timestep(s))


class DiffusersUNet(torch.nn.Module):
    """``net(x_t, t) -> tensor`` around a ``UNet2DModel`` (``.sample`` of its output),
    padding images to a multiple of its downsampling factor.

    Parameters
    ----------
    unet : diffusers.UNet2DModel (or any module returning an object with ``.sample``)
    multiple : int, optional
        Downsampling factor; default ``2 ** (len(unet.config.block_out_channels) - 1)``.
    """

    def __init__(self, unet, multiple: int | None = None):
        super().__init__()
        self.unet = unet
        if multiple is None:
            cfg = getattr(unet, "config", None)
            blocks = getattr(cfg, "block_out_channels", None) if cfg is not None else None
            multiple = 2 ** (len(blocks) - 1) if blocks else 1
        self.multiple = int(multiple)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        def call(v):
            out = self.unet(v, t)
            return out.sample if hasattr(out, "sample") else out[0]
        return run_padded(call, x_t, self.multiple)


_PREDICTIONS = {"epsilon": EpsilonPredictionPrior, "v_prediction": VPredictionPrior,
                "sample": SamplePredictionPrior}


def diffusers_prior(unet, scheduler, data_range: tuple[float, float] = (-1.0, 1.0),
                    interpolate: bool = True, prediction_type: str | None = None) -> VPDenoiser:
    """A ``UNet2DModel`` and its DDPM/DDIM scheduler as a prior ``D(x, sigma)``.

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        Put in eval mode here.
    scheduler : diffusers.DDPMScheduler or DDIMScheduler
        Supplies ``alphas_cumprod`` and ``config.prediction_type``.
    data_range : (lo, hi)
        Range of the training images in the user's frame; diffusers pipelines train on
        [-1, 1] (the default), i.e. ``image * 2 - 1`` for images in [0, 1].
    interpolate : bool
        Fractional timesteps (default) or the nearest grid timestep.
    prediction_type : str, optional
        Overrides ``scheduler.config.prediction_type``.
    """
    kind = prediction_type or getattr(scheduler.config, "prediction_type", "epsilon")
    cls = _PREDICTIONS.get(kind)
    if cls is None:
        raise ValueError(f"prediction_type: expected one of {sorted(_PREDICTIONS)}, "
                         f"got {kind!r}")
    alpha_bar = getattr(scheduler, "alphas_cumprod", None)
    if alpha_bar is None:
        raise ValueError("scheduler: expected a DDPM/DDIM-style scheduler with alphas_cumprod")
    unet.eval()
    return cls(DiffusersUNet(unet), torch.as_tensor(alpha_bar, dtype=torch.float64),
               interpolate=interpolate, data_range=data_range)


def diffusers_prior_from_pretrained(path: str | Path, unet_subfolder: str | None = "unet",
                                    scheduler_subfolder: str | None = "scheduler",
                                    scheduler: str = "ddpm", **options) -> VPDenoiser:
    """Load a local ``save_pretrained`` folder (pipeline layout: ``unet/``, ``scheduler/``).

    ``scheduler`` is ``"ddpm"`` or ``"ddim"`` (both give the same ``alphas_cumprod`` from
    one config); ``options`` go to :func:`diffusers_prior`.  Nothing is downloaded.
    """
    diffusers = require("diffusers", "diffusers", "loading a diffusers checkpoint")
    DDIMScheduler, DDPMScheduler = diffusers.DDIMScheduler, diffusers.DDPMScheduler
    UNet2DModel = diffusers.UNet2DModel
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"path: {str(root)!r} is not a folder saved by diffusers")
    kinds = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}
    if scheduler not in kinds:
        raise ValueError(f"scheduler: expected 'ddpm' or 'ddim', got {scheduler!r}")
    sub_u = unet_subfolder if unet_subfolder and (root / unet_subfolder).is_dir() else None
    sub_s = (scheduler_subfolder if scheduler_subfolder and (root / scheduler_subfolder).is_dir()
             else None)
    unet = UNet2DModel.from_pretrained(root, subfolder=sub_u, local_files_only=True)
    sched = kinds[scheduler].from_pretrained(root, subfolder=sub_s, local_files_only=True)
    return diffusers_prior(unet, sched, **options)
