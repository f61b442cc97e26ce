"""Image-file readers for prior training, each on a small file written in the real format."""

import numpy as np
import pytest
import torch

from diffinv.datasets.collection import (
    RandomCrops,
    find_image_files,
    scan_files,
    split_files,
)
from diffinv.datasets.image_files import coil_combine, open_image_file
from diffinv.datasets.mri_io import write_fastmri

RNG = np.random.default_rng(0)


def _fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _smooth_image(h=24, w=20):
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    return np.exp(-(yy**2 + xx**2) * 2) + 0.3 * (np.abs(yy) < 0.5) * (np.abs(xx) < 0.3)


def test_fastmri_modes(tmp_path):
    x = _smooth_image() * np.exp(1j * 0.3)
    yy, xx = np.meshgrid(np.linspace(-1, 1, 24), np.linspace(-1, 1, 20), indexing="ij")
    sens = np.stack([np.exp(-((yy - c) ** 2 + xx**2)) * np.exp(1j * c) for c in (-1, 0, 1, 0.5)])
    coils = sens * x
    k = np.stack([_fft2c(coils), _fft2c(2 * coils)])  # 2 slices, 4 coils
    rss = np.sqrt((np.abs(coils) ** 2).sum(0))
    multi = write_fastmri(tmp_path / "multi.h5", k)
    f = open_image_file(multi, "rss")
    assert (f.n_slices, f.channels) == (2, 1)
    np.testing.assert_allclose(f.read(0)[0], rss, rtol=1e-4, atol=1e-5)
    write_fastmri(tmp_path / "stored.h5", k, reconstruction_rss=np.stack([rss, rss]) * 7)
    np.testing.assert_allclose(open_image_file(tmp_path / "stored.h5").read(1)[0], 7 * rss,
                               rtol=1e-6)
    c = open_image_file(multi, "complex")
    assert c.channels == 2
    img = c.read(1)
    comb = img[0] + 1j * img[1]
    # all 20 lines are "central" here: the combination is RSS with coil 0's phase, i.e. the
    # image phase 0.3 plus coil 0's sensitivity phase -1
    np.testing.assert_allclose(comb, 2 * rss * np.exp(1j * np.angle(coils[0])), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(np.angle(comb[12, 10]), 0.3 - 1.0, atol=1e-5)
    single = write_fastmri(tmp_path / "single.h5", _fft2c(x)[None])
    s = open_image_file(single, "complex").read(0)
    np.testing.assert_allclose(s[0] + 1j * s[1], x, atol=1e-5)
    np.testing.assert_allclose(open_image_file(single, "single").read(0)[0], np.abs(x),
                               atol=1e-5)
    with pytest.raises(ValueError, match="multi.h5.*multi-coil"):
        open_image_file(multi, "single")
    np.testing.assert_allclose(coil_combine(coils), comb / 2, rtol=1e-4, atol=1e-5)


def test_dicom_nifti_fits(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    nibabel = pytest.importorskip("nibabel")
    from astropy.io import fits
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    stored = RNG.integers(0, 2000, size=(16, 12)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.Modality, ds.Rows, ds.Columns = "CT", 16, 12
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = stored.tobytes()
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    (tmp_path / "s1").mkdir()
    ds.save_as(tmp_path / "s1" / "a.dcm", enforce_file_format=True)
    d = open_image_file(tmp_path / "s1" / "a.dcm")
    assert d.units == "HU" and d.n_slices == 1
    np.testing.assert_array_equal(d.read(0)[0], stored.astype(np.float32) - 1024)
    assert pydicom.dcmread(tmp_path / "s1" / "a.dcm").Rows == 16

    vol = RNG.standard_normal((10, 14, 3)).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    n = open_image_file(tmp_path / "v.nii.gz")
    assert n.n_slices == 3
    np.testing.assert_allclose(n.read(2)[0], vol[:, :, 2])

    cube = RNG.standard_normal((2, 9, 11))
    hdu = fits.PrimaryHDU(cube)
    hdu.header["BUNIT"] = "Jy/pixel"
    hdu.writeto(tmp_path / "sky.fits")
    f = open_image_file(tmp_path / "sky.fits")
    assert (f.n_slices, f.units) == (2, "Jy/pixel")
    np.testing.assert_allclose(f.read(1)[0], cube[1], rtol=1e-6)


def test_numpy_and_pictures(tmp_path):
    import tifffile
    from PIL import Image

    z = RNG.standard_normal((3, 8, 9)) + 1j * RNG.standard_normal((3, 8, 9))
    np.save(tmp_path / "c.npy", z)
    c = open_image_file(tmp_path / "c.npy")
    assert (c.n_slices, c.channels) == (3, 2)
    np.testing.assert_allclose(c.read(2), np.stack([z[2].real, z[2].imag]), rtol=1e-6)
    np.savez(tmp_path / "r.npz", a=np.ones((5, 6)), b=np.zeros((2, 5, 6)))
    r = open_image_file(tmp_path / "r.npz")
    assert r.n_slices == 3 and r.read(0).mean() == 1 and r.read(2).mean() == 0

    grey = RNG.integers(0, 255, (10, 12)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(open_image_file(tmp_path / "g.png").read(0)[0], grey)
    rgb = RNG.integers(0, 255, (10, 12, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    lum = rgb @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(open_image_file(tmp_path / "rgb.png").read(0)[0], lum, rtol=1e-5)
    pages = RNG.integers(0, 60000, (2, 7, 8)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", pages)
    t = open_image_file(tmp_path / "t.tif")
    assert t.n_slices == 2
    np.testing.assert_array_equal(t.read(1)[0], pages[1])


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no supported image file"):
        find_image_files([tmp_path / "empty"])
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="junk.png"):
        scan_files([tmp_path / "junk.png"])
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5"):
        open_image_file(tmp_path / "junk.h5")
    bad = np.ones((8, 8))
    bad[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="nan.npy: slice 0 has 1 NaN"):
        scan_files([tmp_path / "nan.npy"])
    np.save(tmp_path / "real.npy", np.ones((8, 8)))
    np.save(tmp_path / "zcomplex.npy", np.ones((8, 8), dtype=np.complex64))
    with pytest.raises(ValueError, match="zcomplex.npy: has 2 channel.*mixed channel"):
        scan_files([tmp_path / "real.npy", tmp_path / "zcomplex.npy"])
    with pytest.raises(ValueError, match="real.npy: slice 0 is 8x8, smaller than the crop"):
        scan_files([tmp_path / "real.npy"], crop=(9, 4))
    with pytest.raises(FileNotFoundError, match="missing"):
        find_image_files([tmp_path / "missing"])


def test_split_by_subject_and_streaming_shards(tmp_path):
    files = []
    for subject in range(5):
        (tmp_path / f"sub{subject}").mkdir()
        for k in range(2):
            np.save(tmp_path / f"sub{subject}" / f"s{k}.npy",
                    np.full((2, 12, 12), 10 * subject + k, dtype=np.float32))
            files.append(tmp_path / f"sub{subject}" / f"s{k}.npy")
    found = find_image_files([tmp_path])
    assert found == sorted(files)
    train, val = split_files(found, 0.2, "subject", seed=0)
    assert len(val) == 2 and val[0].parent == val[1].parent
    assert not {f.parent for f in train} & {f.parent for f in val}
    assert split_files(found, 0.2, "subject", seed=0) == (train, val)
    scan = scan_files(train)
    assert scan.n_slices == 16 and scan.channels == 1

    # ranks stream disjoint files in a pass; the stream is deterministic
    def values(rank):
        it = iter(RandomCrops(train, (4, 6), seed=3, crops_per_slice=1, rank=rank,
                              world_size=2))
        return {float(next(it)[0, 0, 0]) for _ in range(8)}

    v0, v1 = values(0), values(1)
    assert v0 and v1 and not v0 & v1 and v0 | v1 == {float(np.load(f)[0, 0, 0]) for f in train}
    a = list(zip(range(5), RandomCrops(train, (4, 6), seed=1)))
    b = list(zip(range(5), RandomCrops(train, (4, 6), seed=1)))
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b)) and a[0][1].shape == (1, 4, 6)
    loader = torch.utils.data.DataLoader(RandomCrops(train, (3, 5), seed=0), batch_size=4)
    assert next(iter(loader)).shape == (4, 1, 3, 5)


def test_palette_picture_and_reconstruction_only_fastmri(tmp_path):
    import h5py
    from PIL import Image

    grey = RNG.integers(0, 255, (6, 7)).astype(np.uint8)
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")  # palette indices != values
    np.testing.assert_allclose(open_image_file(tmp_path / "p.png").read(0)[0], grey, atol=1.0)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f.create_dataset("reconstruction_esc", data=np.ones((2, 5, 5), dtype=np.float32))
    assert open_image_file(tmp_path / "r.h5", "single").n_slices == 2
    with pytest.raises(ValueError, match="r.h5: fastmri='complex' needs 'kspace'$"):
        open_image_file(tmp_path / "r.h5", "complex")
