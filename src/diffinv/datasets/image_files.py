"""Lazy readers of 2-D images from the file formats of real collections, for prior training.

Every reader opens a file as an :class:`ImageFile`: a number of 2-D slices and
``read(i) -> (C, H, W)`` float32 array, reading one slice at a time (HDF5 slicing, NIfTI
array proxies, FITS and ``.npy`` memory maps), so a collection larger than memory streams.
Complex images become 2 channels (real, imag); colour pictures become grey levels.

===================  ======================================================================
suffix               slices and values
===================  ======================================================================
``.h5 .hdf5``        fastMRI (Zbontar et al. 2018).  ``fastmri="single"``: single-coil
                     magnitude (``reconstruction_esc``, else ``|IFFT(kspace)|``);
                     ``"rss"``: multi-coil root-sum-of-squares magnitude
                     (``reconstruction_rss``, else computed from ``kspace``);
                     ``"complex"``: coil-combined complex image from ``kspace`` (2 channels;
                     coil sensitivities estimated from the central 24 k-space lines,
                     normalised by their RSS and phase-referenced to coil 0).
``.dcm``             DICOM (pydicom): ``pixel_array * RescaleSlope + RescaleIntercept``,
                     one slice per frame; units ``HU`` for CT, else stored values.
``.nii .nii.gz``     NIfTI (nibabel): scaled voxel values, slices along the third axis.
``.fits .fit .fts``  FITS (astropy): the first HDU with data, 2-D or a stack; ``BUNIT``.
``.npy .npz``        2-D ``(H, W)`` or a stack ``(N, H, W)``; complex dtype -> 2 channels.
                     ``.npz``: every array, in key order.
``.png .tif .tiff``  Pictures (Pillow / tifffile); RGB(A) -> luminance (BT.709 weights);
``.jpg .jpeg``       multi-page TIFF -> slices.
===================  ======================================================================

pydicom, nibabel, astropy, Pillow and tifffile come with ``pip install 'diffinv[data]'``; a
missing one raises an ``ImportError`` naming the extra and the file.  Unreadable files
raise ``ValueError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..extras import require

__all__ = ["ImageFile", "open_image_file", "SUFFIXES", "FASTMRI_MODES", "image_suffix"]

FASTMRI_MODES = ("single", "rss", "complex")
SUFFIXES = (".h5", ".hdf5", ".dcm", ".nii", ".nii.gz", ".fits", ".fit", ".fts", ".npy", ".npz",
            ".png", ".tif", ".tiff", ".jpg", ".jpeg")
_LUMA = np.array([0.2125, 0.7154, 0.0721])


@dataclass
class ImageFile:
    """One opened file: ``n_slices`` 2-D images of ``channels`` channels.

    ``read(i)`` returns slice ``i`` as a float32 ``(channels, H, W)`` array; ``units`` is
    what the file says its values are in (empty if it does not say).
    """

    path: Path
    n_slices: int
    channels: int
    units: str
    reader: Callable[[int], np.ndarray]

    def read(self, index: int) -> np.ndarray:
        if not 0 <= index < self.n_slices:
            raise IndexError(f"{self.path}: slice {index} out of range 0..{self.n_slices - 1}")
        try:
            return self.reader(index)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError,
                NotImplementedError) as err:  # the readers' many failure types
            raise ValueError(f"{self.path}: cannot read slice {index}: {err}") from err


def image_suffix(path: Path) -> str:
    """The recognised suffix of ``path`` (``.nii.gz`` counts as one), or ``""``."""
    name = path.name.lower()
    for s in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    return ""


def _channels(a: np.ndarray) -> np.ndarray:
    """2-D real or complex array -> (C, H, W) float32."""
    if np.iscomplexobj(a):
        return np.stack([a.real, a.imag]).astype(np.float32)
    return np.array(a, dtype=np.float32)[None]  # a copy: never a view of a memory map


def _ifft2c(k: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"),
                           axes=axes)


def coil_combine(coil_images: np.ndarray, centre_lines: int = 24) -> np.ndarray:
    """Complex coil combination of ``(coils, H, W)`` images with low-resolution maps.

    Sensitivities ``S_c = c_lr / RSS(c_lr) * exp(-i arg c_lr,0)`` from the central
    ``centre_lines`` phase-encoding lines (last axis) of k-space, phase-referenced to the
    first coil (as ESPIRiT maps are in BART), so the image keeps its phase up to the smooth
    phase of coil 0; returns ``sum_c conj(S_c) c / sum_c |S_c|^2`` ``(H, W)``.
    """
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil_images, axes=(-2, -1)), norm="ortho"),
                        axes=(-2, -1))
    w = k.shape[-1]
    lo = np.zeros_like(k)
    a, b = max(0, w // 2 - centre_lines // 2), min(w, w // 2 + centre_lines // 2)
    lo[..., a:b] = k[..., a:b]
    low = _ifft2c(lo)
    rss = np.sqrt((np.abs(low) ** 2).sum(0)) + 1e-12
    sens = low / rss * np.exp(-1j * np.angle(low[0]))
    return (np.conj(sens) * coil_images).sum(0) / np.maximum((np.abs(sens) ** 2).sum(0), 1e-12)


def _open_fastmri(path: Path, mode: str) -> ImageFile:
    import h5py

    if mode not in FASTMRI_MODES:
        raise ValueError(f"fastmri: expected one of {FASTMRI_MODES}, got {mode!r}")
    with h5py.File(path, "r") as f:
        keys = set(f.keys())
        if "kspace" not in keys and not {"reconstruction_esc", "reconstruction_rss"} & keys:
            raise ValueError(f"{path}: no 'kspace' or 'reconstruction_*' dataset (not fastMRI)")
        kshape = f["kspace"].shape if "kspace" in keys else None
    multicoil = kshape is not None and len(kshape) == 4
    stored = {"single": "reconstruction_esc", "rss": "reconstruction_rss"}.get(mode)

    def dataset(name):
        with h5py.File(path, "r") as f:
            if name not in f:
                raise ValueError(f"{path}: no {name!r} dataset")
            return f[name].shape[0]

    if stored in keys:
        n = dataset(stored)

        def read(i):
            with h5py.File(path, "r") as f:
                return _channels(np.asarray(f[stored][i]))
        return ImageFile(path, n, 1, "a.u. (fastMRI magnitude)", read)
    if kshape is None:
        need = f"'kspace' or {stored!r}" if stored else "'kspace'"
        raise ValueError(f"{path}: fastmri={mode!r} needs {need}")
    if mode == "single" and multicoil:
        raise ValueError(f"{path}: fastmri='single' but kspace is multi-coil {kshape}; "
                         "use 'rss' or 'complex'")

    def read_k(i):
        with h5py.File(path, "r") as f:
            img = _ifft2c(np.asarray(f["kspace"][i]).astype(np.complex128))
        if mode == "complex":
            return _channels(coil_combine(img) if multicoil else img)
        mag = np.sqrt((np.abs(img) ** 2).sum(0)) if multicoil else np.abs(img)
        return _channels(mag)

    units = "a.u. (fastMRI k-space scale)"
    return ImageFile(path, int(kshape[0]), 2 if mode == "complex" else 1, units, read_k)


def _open_dicom(path: Path) -> ImageFile:
    pydicom = require("pydicom", "data", f"reading the DICOM file {path}")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as err:  # noqa: BLE001 - pydicom raises many types
        raise ValueError(f"{path}: not a readable DICOM file ({err})") from err
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    units = "HU" if str(getattr(ds, "Modality", "")) == "CT" else str(
        getattr(ds, "RescaleType", "") or "DICOM stored value")

    def read(i):
        px = np.asarray(pydicom.dcmread(path).pixel_array, dtype=np.float64)
        img = px[i] if frames > 1 else px
        if img.ndim == 3:  # colour
            img = img[..., :3] @ _LUMA
        return _channels(img * slope + intercept)
    return ImageFile(path, frames, 1, units, read)


def _open_nifti(path: Path) -> ImageFile:
    nibabel = require("nibabel", "data", f"reading the NIfTI file {path}")
    try:
        img = nibabel.load(str(path))
    except Exception as err:  # noqa: BLE001 - nibabel raises many types
        raise ValueError(f"{path}: not a readable NIfTI file ({err})") from err
    shape = img.shape
    if len(shape) < 2:
        raise ValueError(f"{path}: expected at least 2-D data, got shape {shape}")
    extra = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    units = str(img.header.get_xyzt_units()[0] or "") if hasattr(img.header, "get_xyzt_units") \
        else ""

    def read(i):
        if len(shape) == 2:
            return _channels(np.asarray(img.dataobj))
        idx = np.unravel_index(i, shape[2:], order="F")
        return _channels(np.asarray(img.dataobj[(slice(None), slice(None), *idx)]))
    return ImageFile(path, extra, 1, f"NIfTI scaled values (spatial unit {units})"
                     if units else "NIfTI scaled values", read)


def _open_fits(path: Path) -> ImageFile:
    fits = require("astropy.io.fits", "data", f"reading the FITS file {path}")

    try:
        with fits.open(path, memmap=True) as hdul:
            hdu = next((i for i, h in enumerate(hdul) if h.data is not None), None)
            if hdu is None:
                raise ValueError("no HDU with data")
            shape = hdul[hdu].data.shape
            units = str(hdul[hdu].header.get("BUNIT", ""))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable FITS image ({err})") from err
    if len(shape) < 2:
        raise ValueError(f"{path}: expected 2-D image data, got shape {shape}")
    n = int(np.prod(shape[:-2])) if len(shape) > 2 else 1

    def read(i):
        with fits.open(path, memmap=True) as hdul:
            data = hdul[hdu].data
            return _channels(np.asarray(data.reshape(-1, *shape[-2:])[i], dtype=np.float64))
    return ImageFile(path, n, 1, units, read)


def _array_file(path: Path, arrays: list[Callable[[], np.ndarray]], shapes, complex_) -> ImageFile:
    for s in shapes:
        if len(s) not in (2, 3):
            raise ValueError(f"{path}: expected (H, W) or (N, H, W) arrays, got shape {s}")
    counts = [1 if len(s) == 2 else s[0] for s in shapes]
    starts = np.cumsum([0, *counts])

    def read(i):
        k = int(np.searchsorted(starts, i, side="right") - 1)
        a = arrays[k]()
        return _channels(np.asarray(a if a.ndim == 2 else a[i - starts[k]]))
    return ImageFile(path, int(starts[-1]), 2 if complex_ else 1, "", read)


def _open_numpy(path: Path) -> ImageFile:
    try:
        if path.name.lower().endswith(".npy"):
            a = np.load(path, mmap_mode="r")
            return _array_file(path, [lambda: np.load(path, mmap_mode="r")], [a.shape],
                               np.iscomplexobj(a))
        with np.load(path) as z:
            keys = sorted(z.files)
            shapes = [z[k].shape for k in keys]
            cplx = {np.iscomplexobj(z[k]) for k in keys}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a readable NumPy file ({err})") from err
    if not keys:
        raise ValueError(f"{path}: the .npz archive holds no arrays")
    if len(cplx) > 1:
        raise ValueError(f"{path}: mixes real and complex arrays (mixed channel counts)")

    def loader(key):
        def load():
            with np.load(path) as z:
                return z[key]
        return load
    return _array_file(path, [loader(k) for k in keys], shapes, cplx.pop())


def _open_picture(path: Path) -> ImageFile:
    suffix = image_suffix(path)
    tiff = suffix in (".tif", ".tiff")
    if tiff:
        tifffile = require("tifffile", "data", f"reading the TIFF file {path}")
    else:
        Image = require("PIL.Image", "data", f"reading the picture {path}")
    try:
        if tiff:
            with tifffile.TiffFile(path) as t:
                n = len(t.pages)

            def read(i):
                a = np.asarray(tifffile.imread(path, key=i), dtype=np.float64)
                return _channels(a[..., :3] @ _LUMA if a.ndim == 3 else a)
        else:
            with Image.open(path) as im:
                n = int(getattr(im, "n_frames", 1))

            def read(i):
                with Image.open(path) as im:
                    im.seek(i)
                    if im.mode not in ("L", "I", "I;16", "F", "RGB", "RGBA"):
                        im = im.convert("RGB")  # palette, grey+alpha, CMYK, ...
                    a = np.asarray(im, dtype=np.float64)
                return _channels(a[..., :3] @ _LUMA if a.ndim == 3 else a)
    except Exception as err:  # noqa: BLE001 - Pillow/tifffile raise many types
        raise ValueError(f"{path}: not a readable picture ({err})") from err
    return ImageFile(path, n, 1, "grey level (file's integer scale)", read)


def open_image_file(path: str | Path, fastmri: str = "rss") -> ImageFile:
    """Open ``path`` lazily by its suffix (see the module docstring).

    Raises ``ValueError`` naming the file if it is not a supported, readable image file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"data: {str(p)!r} is not a file")
    suffix = image_suffix(p)
    if suffix in (".h5", ".hdf5"):
        try:
            return _open_fastmri(p, fastmri)
        except OSError as err:
            raise ValueError(f"{p}: not a readable HDF5 file ({err})") from err
    if suffix == ".dcm":
        return _open_dicom(p)
    if suffix in (".nii", ".nii.gz"):
        return _open_nifti(p)
    if suffix in (".fits", ".fit", ".fts"):
        return _open_fits(p)
    if suffix in (".npy", ".npz"):
        return _open_numpy(p)
    if suffix:
        return _open_picture(p)
    raise ValueError(f"{p}: unsupported file type; expected one of {', '.join(SUFFIXES)}")
