"""Our checkpoint format for learned priors; shipped priors; loading from a local path.

A prior checkpoint is a ``torch.save`` dictionary (loaded with ``weights_only=True``, so no
code runs on load)::

    {"format": "diffinv-prior", "format_version": 2,
     "checksum": {"sha256": HEX, "covers": [...]},  # see weights_checksum
     "network": {"type": "unet", "config": UNetConfig.to_dict()},
     "state_dict": {...},                       # EMA weights, float32
     "preconditioning": {"sigma_data", "offset", "scale", "sigma_min", "sigma_max"},
     "data": {"dataset", "image_size", "channels", "units", "data_range", "source",
              "min_size", "max_size"},          # image_size: int or [H, W]; limits optional
     "card": {...}}                              # model card (see training.model_card)

The checksum (format version 2) is the SHA-256 of the weights and of the network,
preconditioning and data entries; :func:`prior_from_dict` recomputes it and refuses a damaged
file.  Version-1 files (written before checksums) load unverified.

Shipped priors live in this package's ``checkpoints/`` folder as ``NAME.pt`` with a model
card ``NAME.json`` (and a readable ``NAME.md``) beside it; :func:`load` reads them offline.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import torch

from ..io import FileFormatError, atomic_write, jsonable, reader
from .edm import EDMDenoiser
from .networks.unet import UNet, UNetConfig

__all__ = [
    "LearnedPrior", "save_prior", "load", "load_prior", "list_shipped", "FORMAT",
    "weights_checksum",
]

FORMAT = "diffinv-prior"
FORMAT_VERSION = 2
CHECKSUM_COVERS = ("state_dict", "network", "preconditioning", "data")


def weights_checksum(ckpt: dict) -> str:
    """SHA-256 (hex) of a checkpoint's weights (names, dtypes, shapes, bytes, in name order)
    and of its ``network``, ``preconditioning`` and ``data`` entries (as sorted JSON)."""
    h = hashlib.sha256()
    state = ckpt["state_dict"]
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    for key in CHECKSUM_COVERS[1:]:
        h.update(json.dumps(jsonable(ckpt.get(key)), sort_keys=True).encode())
    return h.hexdigest()


class LearnedPrior(EDMDenoiser):
    """A trained UNet with EDM preconditioning, with its data convention attached.

    Call it as ``prior(x, sigma)`` with ``x`` of shape ``(batch, channels, H, W)`` in the
    prior's frame (``units``, typical values within ``data_range``) and ``sigma`` (batch,)
    in the same units.  The UNet is fully convolutional, so any ``H, W`` within
    ``[min_size, max_size]`` works (square or not); the prior is size-agnostic in the sense
    of :func:`diffinv.priors.base.shape_mismatch`.  Whether the *statistics* it learned hold
    at other sizes (same pixel scale, larger field of view) is for the model card to say.

    Attributes
    ----------
    image_shape : tuple of int
        ``(channels, H, W)`` of the training images (crops); complex images are 2 channels
        ``(real, imag)``.
    event_shape : tuple of int
        Same as ``image_shape``: the default shape (unconditional sampling, problems
        without an image shape).
    channels : int
        Image channels; with ``min_size``/``max_size`` the shapes the prior accepts.
    min_size, max_size : int or None
        Limits on the image height and width in pixels (``None``: no upper limit).
    data_range : tuple of float
        ``(lo, hi)`` the training data was normalised from (``[-1, 1]`` inside the network).
    units : str
        Physical units of the pixel values.
    dataset : str
        Name of the training data set in :mod:`diffinv.datasets.registry`.
    is_complex : bool
        True for 2-channel (real, imag) priors of complex images.
    card : dict
        The model card.
    """

    def __init__(self, net: UNet, preconditioning: dict, data: dict, card: dict | None = None):
        super().__init__(net, **preconditioning)
        size = data["image_size"]
        hw = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(
            int(s) for s in size)
        self.image_shape = (int(data["channels"]), *hw)
        self.event_shape = self.image_shape
        self.channels = int(data["channels"])
        self.min_size = int(data.get("min_size") or 1)
        self.max_size = None if data.get("max_size") is None else int(data["max_size"])
        self.data_range = tuple(float(v) for v in data["data_range"])
        self.units = str(data.get("units", ""))
        self.dataset = data.get("dataset")
        self.is_complex = bool(data.get("is_complex", False))
        self.data_info = dict(data)
        self.card = dict(card or {})
        self.eval()

    def training_samples(self, n: int, seed: int = 0) -> torch.Tensor:
        """Fresh draws ``(n, *image_shape)`` float32 from the training generator (CPU).

        Raises ``ValueError`` when the prior was not trained on a registered data set.
        """
        from ..datasets.registry import get_dataset

        if self.dataset is None:
            raise ValueError("training_samples: this prior has no registered training data set")
        g = torch.Generator().manual_seed(int(seed))
        if self.image_shape[1] != self.image_shape[2]:
            raise ValueError("training_samples: the registered generators make square images; "
                             f"this prior's training shape is {self.image_shape}")
        return get_dataset(self.dataset).sample(int(n), self.image_shape[-1], g)

    def checkpoint_dict(self) -> dict:
        """The checkpoint dictionary with its checksum (see the module docstring)."""
        ckpt = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "network": {"type": "unet", "config": self.net.config.to_dict()},
            "state_dict": {k: v.detach().cpu().float() for k, v in self.net.state_dict().items()},
            "preconditioning": {
                "sigma_data": self.sigma_data, "offset": self.offset, "scale": self.scale,
                "sigma_min": self.sigma_min, "sigma_max": self.sigma_max,
            },
            "data": dict(self.data_info, data_range=list(self.data_range)),
            "card": self.card,
        }
        ckpt["checksum"] = {"sha256": weights_checksum(ckpt), "covers": list(CHECKSUM_COVERS)}
        return ckpt

    def __repr__(self) -> str:
        return (f"LearnedPrior(dataset={self.dataset!r}, image_shape={self.image_shape}, "
                f"units={self.units!r}, data_range={self.data_range})")


def save_prior(prior: LearnedPrior, path: str | os.PathLike) -> Path:
    """Write ``prior`` atomically to ``path`` (our checkpoint format)."""
    ckpt = prior.checkpoint_dict()
    return atomic_write(path, lambda tmp: torch.save(ckpt, tmp))


def prior_from_dict(ckpt: dict, source: str = "checkpoint") -> LearnedPrior:
    """Build a :class:`LearnedPrior` from a checkpoint dictionary."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{source}: not a diffinv prior checkpoint (missing format={FORMAT!r})")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{source}: format_version {ckpt['format_version']} is newer than "
                         f"this diffinv supports ({FORMAT_VERSION})")
    if int(ckpt.get("format_version", 0)) >= 2:
        stored = (ckpt.get("checksum") or {}).get("sha256")
        if stored is None:
            raise FileFormatError(f"{source}: the checkpoint has no checksum (format_version 2)")
        actual = weights_checksum(ckpt)
        if actual != stored:
            raise FileFormatError(
                f"{source}: checksum mismatch (stored sha256 {stored[:16]}..., computed "
                f"{actual[:16]}...); the checkpoint file is damaged"
            )
    if ckpt["network"].get("type") != "unet":
        raise ValueError(f"{source}: unknown network type {ckpt['network'].get('type')!r}")
    net = UNet(UNetConfig.from_dict(ckpt["network"]["config"]))
    net.load_state_dict(ckpt["state_dict"])
    return LearnedPrior(net, ckpt["preconditioning"], ckpt["data"], ckpt.get("card"))


@reader("diffinv prior checkpoint")
def load_prior(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LearnedPrior:
    """Load a prior saved with :func:`save_prior` (or by training) from a local file.

    A training checkpoint (``checkpoint.pt`` from :func:`diffinv.priors.training.train`)
    is accepted too; its EMA weights are used.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no prior checkpoint at {str(path)!r}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(ckpt, dict) and "prior" in ckpt and ckpt.get("format") == "diffinv-train":
        ckpt = ckpt["prior"]
    return prior_from_dict(ckpt, source=str(path))


def _shipped_dir():
    return resources.files("diffinv.priors") / "checkpoints"


def list_shipped() -> list[dict]:
    """Model cards of the shipped priors (each a dict with at least ``name``)."""
    cards = []
    folder = _shipped_dir()
    if not folder.is_dir():
        return cards
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            card = json.loads(entry.read_text())
            card.setdefault("name", entry.name[: -len(".json")])
            cards.append(card)
    return cards


def load(name: str, map_location: str | torch.device = "cpu") -> LearnedPrior:
    """Load a shipped prior by name (offline, package data) or a checkpoint from a path.

    Parameters
    ----------
    name : str
        A shipped name (``diffinv priors list``), or a path to a ``.pt`` checkpoint.

    Raises
    ------
    FileNotFoundError
        If ``name`` is neither a shipped prior nor an existing file.
    """
    entry = _shipped_dir() / f"{name}.pt"
    if "/" not in name and os.sep not in name and entry.is_file():
        with resources.as_file(entry) as path:
            return load_prior(path, map_location)
    if Path(name).is_file():
        return load_prior(name, map_location)
    shipped = [c["name"] for c in list_shipped()]
    raise FileNotFoundError(
        f"name: {name!r} is neither a shipped prior (available: {shipped}) nor a checkpoint file"
    )
