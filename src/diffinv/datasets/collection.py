"""A collection of image files for prior training: discovery, split, scan, streamed crops.

* :func:`find_image_files` expands files and folders (recursively) into supported files.
* :func:`split_files` puts whole files, or whole subjects (a file's parent folder, e.g. one
  DICOM series or one patient directory), into the training or the validation split,
  deterministically from a seed.
* :func:`scan_files` reads every slice once, one at a time, and returns the value range,
  mean, standard deviation and channel count; it stops with an error naming the file on
  unreadable files, NaN/Inf pixels, mixed channel counts or slices smaller than the crop.
* :class:`RandomCrops` is a :class:`torch.utils.data.IterableDataset` streaming random
  ``(C, h, w)`` crops from disk (one slice in memory at a time per worker), sharded by
  rank (``rank``/``world_size``) and by data-loader worker.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .image_files import ImageFile, image_suffix, open_image_file

__all__ = ["find_image_files", "split_files", "scan_files", "ScanResult", "RandomCrops"]


def find_image_files(paths: Sequence[str | Path]) -> list[Path]:
    """Supported image files among ``paths`` (folders searched recursively), sorted.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a folder with no
    supported file or an explicitly named file of an unsupported type.
    """
    if not paths:
        raise ValueError("data: expected at least one file or folder")
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and image_suffix(f))
            if not found:
                raise ValueError(f"data: folder {str(p)!r} holds no supported image file")
            out.extend(found)
        elif p.is_file():
            if not image_suffix(p):
                raise ValueError(f"data: {str(p)!r} is not a supported image file type")
            out.append(p)
        else:
            raise FileNotFoundError(f"data: {str(p)!r} does not exist")
    return sorted(dict.fromkeys(out))


def _unit_key(path: Path, by: str) -> str:
    return str(path.parent) if by == "subject" else str(path)


def split_files(files: Sequence[Path], val_fraction: float = 0.1, by: str = "file",
                seed: int = 0) -> tuple[list[Path], list[Path]]:
    """``(train, validation)`` file lists; ``by="file"`` or ``"subject"`` (parent folder).

    The validation units are a seeded hash choice of ``round(val_fraction * units)`` units
    (at least one when ``val_fraction > 0`` and there are two or more units), so adding
    files does not reshuffle the others' assignment more than necessary.
    """
    if by not in ("file", "subject"):
        raise ValueError(f"split_by: expected 'file' or 'subject', got {by!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction}")
    units = sorted({_unit_key(f, by) for f in files})
    n_val = int(round(val_fraction * len(units)))
    if val_fraction > 0 and len(units) >= 2:
        n_val = min(max(n_val, 1), len(units) - 1)

    def rank(u: str) -> str:
        return hashlib.sha256(f"{seed}:{u}".encode()).hexdigest()

    val_units = set(sorted(units, key=rank)[:n_val])
    train = [f for f in files if _unit_key(f, by) not in val_units]
    val = [f for f in files if _unit_key(f, by) in val_units]
    return train, val


@dataclass
class ScanResult:
    """What :func:`scan_files` found: value range, moments, channels, slices, units."""

    lo: float
    hi: float
    mean: float
    std: float
    channels: int
    n_slices: int
    units: str
    min_hw: tuple[int, int]


def _check_slice(img: np.ndarray, f: ImageFile, i: int) -> None:
    if not np.isfinite(img).all():
        bad = int((~np.isfinite(img)).sum())
        raise ValueError(f"{f.path}: slice {i} has {bad} NaN/Inf pixels")


def scan_files(files: Sequence[Path], fastmri: str = "rss", crop: tuple[int, int] | None = None,
               max_slices: int | None = None) -> ScanResult:
    """Read each slice once (streaming) and summarise; see the module docstring for errors.

    ``max_slices`` caps the slices read per file (evenly spaced) for the statistics; the
    channel and size checks still open every file.
    """
    if not files:
        raise ValueError("data: no files to scan (empty split?)")
    lo, hi, s1, s2, count, slices = math.inf, -math.inf, 0.0, 0.0, 0, 0
    channels, units, min_hw = None, None, (10**9, 10**9)
    for path in files:
        f = open_image_file(path, fastmri)
        if f.n_slices < 1:
            raise ValueError(f"{path}: holds no image slices")
        if channels is None:
            channels, units, first = f.channels, f.units, path
        elif f.channels != channels:
            raise ValueError(f"{path}: has {f.channels} channel(s) but {first} has {channels} "
                             "(mixed channel counts)")
        idx = range(f.n_slices)
        if max_slices is not None and f.n_slices > max_slices:
            idx = np.linspace(0, f.n_slices - 1, max_slices).round().astype(int).tolist()
        for i in idx:
            img = f.read(i).astype(np.float64)
            _check_slice(img, f, i)
            if crop is not None and (img.shape[-2] < crop[0] or img.shape[-1] < crop[1]):
                raise ValueError(f"{path}: slice {i} is {img.shape[-2]}x{img.shape[-1]}, "
                                 f"smaller than the crop {crop[0]}x{crop[1]}")
            min_hw = (min(min_hw[0], img.shape[-2]), min(min_hw[1], img.shape[-1]))
            lo, hi = min(lo, float(img.min())), max(hi, float(img.max()))
            s1 += float(img.sum())
            s2 += float((img**2).sum())
            count += img.size
            slices += 1
    mean = s1 / count
    std = math.sqrt(max(s2 / count - mean**2, 0.0))
    return ScanResult(lo, hi, mean, std, int(channels), slices, units or "", min_hw)


class RandomCrops(torch.utils.data.IterableDataset):
    """Endless stream of random ``(C, h, w)`` float32 crops from image files.

    Parameters
    ----------
    files : sequence of Path
    crop : (h, w)
        Crop size in pixels (non-square allowed).
    seed : int
        With ``rank`` and the data-loader worker id, seeds the file order, slice order and
        crop positions; the same arguments give the same stream.
    crops_per_slice : int
        Crops taken from each slice read (amortises reading).
    rank, world_size : int
        This process's shard: files ``rank, rank + world_size, ...`` of each shuffled pass
        (every rank gets at least one file; small collections are repeated).
    fastmri : str
        See :func:`diffinv.datasets.image_files.open_image_file`.
    transform : callable, optional
        Applied to each crop tensor (e.g. the normalisation to the network's frame).
    """

    def __init__(self, files: Sequence[Path], crop: tuple[int, int], seed: int = 0,
                 crops_per_slice: int = 4, rank: int = 0, world_size: int = 1,
                 fastmri: str = "rss", transform=None):
        super().__init__()
        if not files:
            raise ValueError("files: expected at least one image file")
        if not (0 <= rank < world_size):
            raise ValueError(f"rank: expected 0 <= rank < world_size={world_size}, got {rank}")
        self.files = [Path(f) for f in files]
        self.crop = (int(crop[0]), int(crop[1]))
        self.seed, self.crops_per_slice = int(seed), int(crops_per_slice)
        self.rank, self.world_size = int(rank), int(world_size)
        self.fastmri, self.transform = fastmri, transform

    def _shard(self, g: torch.Generator, worker: int, n_workers: int) -> list[Path]:
        order = [self.files[i] for i in torch.randperm(len(self.files), generator=g).tolist()]
        reps = math.ceil(self.world_size * n_workers / len(order))
        order = order * reps
        return order[self.rank * n_workers + worker::self.world_size * n_workers]

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        h, w = self.crop
        epoch = 0
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            local = torch.Generator().manual_seed(
                self.seed * 1_000_003 + 7919 * (self.rank * n_workers + worker + 1) + epoch)
            for path in self._shard(g, worker, n_workers):
                f = open_image_file(path, self.fastmri)
                for i in torch.randperm(f.n_slices, generator=local).tolist():
                    img = f.read(i)
                    _check_slice(img, f, i)
                    if img.shape[-2] < h or img.shape[-1] < w:
                        raise ValueError(f"{path}: slice {i} is {img.shape[-2]}x"
                                         f"{img.shape[-1]}, smaller than the crop {h}x{w}")
                    t = torch.from_numpy(img)
                    for _ in range(self.crops_per_slice):
                        y = int(torch.randint(img.shape[-2] - h + 1, (1,), generator=local))
                        x = int(torch.randint(img.shape[-1] - w + 1, (1,), generator=local))
                        c = t[:, y:y + h, x:x + w].clone()
                        yield self.transform(c) if self.transform is not None else c
            epoch += 1
