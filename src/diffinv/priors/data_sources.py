"""Where training images come from: a registered generator or the user's image files.

Both kinds give the training loop the same things: ``channels``, ``units``, a description
for the model card, the normalisation (data range, offset/scale to about [-1, 1] and
``sigma_data``), deterministic *pools* of training images (pool ``k`` is the same on every
run, so resumed runs reproduce uninterrupted ones) and held-out images.

* :class:`RegisteredSource`: a generator of :mod:`diffinv.datasets.registry`; a pool is the
  same on every rank (generated, cheap), so a multi-process run sees exactly the data of a
  single-process run.
* :class:`FileSource`: files and folders (:mod:`diffinv.datasets.collection`); the training
  / validation split is by file or subject, a pool is ``pool_size`` random crops streamed
  from this rank's shard of the training files, held-out crops come from the validation
  files.  The range comes from one streaming scan of the training files (complex data: the
  symmetric range ``[-m, m]`` with ``m`` the largest absolute real/imaginary part).
"""

from __future__ import annotations

import torch

from ..datasets.registry import estimate_range, get_dataset

__all__ = ["RegisteredSource", "FileSource", "make_source"]


def _normalisation(lo: float, hi: float, sample: torch.Tensor, what: str) -> dict:
    if not hi > lo:
        raise ValueError(f"{what}: degenerate value range ({lo}, {hi})")
    offset, scale = 0.5 * (lo + hi), 0.5 * (hi - lo)
    sigma_data = float(((sample.double() - offset) / scale).std())
    return {"data_range": [float(lo), float(hi)], "offset": float(offset),
            "scale": float(scale), "sigma_data": sigma_data}


class RegisteredSource:
    """Images from a registered generator (``cfg.dataset``) at ``cfg.image_size``."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.spec = get_dataset(cfg.dataset)
        self.channels, self.units = self.spec.channels, self.spec.units
        self.shape = (cfg.image_size, cfg.image_size)
        self.is_complex = self.spec.symmetric and self.spec.channels % 2 == 0
        self._last: tuple[int, torch.Tensor] | None = None

    def _draw(self, n: int, seed: int) -> torch.Tensor:
        return self.spec.sample(n, self.cfg.image_size, torch.Generator().manual_seed(seed))

    def pool(self, index: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """Pool ``index`` (identical on every rank), ``(pool_size, C, H, W)``, user frame.

        The last pool is kept, so the normalisation scan and the first training pool
        (both pool 0) are generated once; callers must not modify it in place.
        """
        if self._last is None or self._last[0] != index:
            self._last = (index, self._draw(self.cfg.pool_size,
                                            self.cfg.seed * 1_000_003 + 7919 * index + 1))
        return self._last[1]

    def normalisation(self) -> dict:
        x = self.pool(0)
        lo, hi = self.spec.data_range or estimate_range(x, self.spec.symmetric)
        return {**_normalisation(lo, hi, x, f"dataset {self.cfg.dataset!r}")}

    def heldout(self, n: int) -> torch.Tensor:
        return self._draw(n, 10_000 + self.cfg.seed)

    def card(self) -> dict:
        return {"name": self.cfg.dataset, "dataset": self.cfg.dataset,
                "generator": self.spec.source, "description": self.spec.description,
                "licence": "BSD-3-Clause (weights trained by diffinv on synthetic data)",
                "psnr_convention_images": f"{self.cfg.eval_images} held-out images "
                                          f"(seed 10_000 + training seed)"}

    def data_info(self) -> dict:
        return {"dataset": self.cfg.dataset, "source": self.spec.source}


class FileSource:
    """Random crops of the user's image files (``cfg.data``); see the module docstring."""

    def __init__(self, cfg):
        from ..datasets.collection import find_image_files, scan_files, split_files

        self.cfg = cfg
        files = find_image_files(cfg.data)
        if cfg.val_data:  # an explicit validation set replaces the split
            self.train_files, self.val_files = files, find_image_files(cfg.val_data)
            both = set(self.train_files) & set(self.val_files)
            if both:
                raise ValueError(f"val_data: {sorted(both)[0]} is also a training file")
        else:
            self.train_files, self.val_files = split_files(files, cfg.val_fraction,
                                                           cfg.split_by, cfg.seed)
        self.shape = tuple(int(c) for c in (cfg.crop or (cfg.image_size, cfg.image_size)))
        self.scan = scan_files(self.train_files, cfg.fastmri, self.shape, cfg.scan_slices)
        if self.val_files:  # same checks on the validation files (channels, NaN, sizes)
            val = scan_files(self.val_files, cfg.fastmri, self.shape, cfg.scan_slices)
            if val.channels != self.scan.channels:
                raise ValueError(f"{self.val_files[0]}: has {val.channels} channel(s), the "
                                 f"training files {self.scan.channels} (mixed channel counts)")
        self.channels = self.scan.channels
        self.units = cfg.units or self.scan.units
        self.is_complex = self.channels == 2

    def _crops(self, files, n: int, seed: int, rank: int = 0, world_size: int = 1):
        from ..datasets.collection import RandomCrops

        stream = iter(RandomCrops(files, self.shape, seed=seed, rank=rank,
                                  world_size=world_size, fastmri=self.cfg.fastmri))
        return torch.stack([next(stream) for _ in range(n)])

    def pool(self, index: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """Pool ``index`` of this rank's shard: ``(pool_size, C, h, w)`` crops, user frame."""
        return self._crops(self.train_files, self.cfg.pool_size,
                           self.cfg.seed * 1_000_003 + 7919 * index + 1, rank, world_size)

    def normalisation(self) -> dict:
        s = self.scan
        lo, hi = s.lo, s.hi
        if self.is_complex:
            m = max(abs(lo), abs(hi))
            lo, hi = -m, m
        norm = _normalisation(lo, hi, self.pool(0), f"data {self.train_files[0]}")
        return {**norm, "pixel_mean": s.mean, "pixel_std": s.std, "slices_scanned": s.n_slices}

    def heldout(self, n: int) -> torch.Tensor:
        files = self.val_files or self.train_files
        return self._crops(files, n, 10_000 + self.cfg.seed)

    def card(self) -> dict:
        name = f"files-{self.shape[0]}x{self.shape[1]}"
        held = "validation files" if self.val_files else "training files (no validation split)"
        return {"name": name, "dataset": None, "generator": "diffinv.datasets.collection",
                "description": f"random {self.shape[0]}x{self.shape[1]} crops of "
                               f"{len(self.train_files)} training file(s) given by --data",
                "licence": "weights trained on the user's data: the data's licence applies",
                "train_files": [str(f) for f in self.train_files],
                "validation_files": [str(f) for f in self.val_files],
                "split_by": "explicit (--val-data)" if self.cfg.val_data else self.cfg.split_by,
                "fastmri": self.cfg.fastmri,
                "psnr_convention_images": f"{self.cfg.eval_images} crops of the {held}"}

    def data_info(self) -> dict:
        return {"dataset": None, "source": "files"}


def make_source(cfg):
    """:class:`FileSource` when ``cfg.data`` is set, else :class:`RegisteredSource`."""
    return FileSource(cfg) if cfg.data else RegisteredSource(cfg)
