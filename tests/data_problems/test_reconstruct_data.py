"""``diffinv reconstruct --data`` end to end on the shared real files and on files written by
the package's own writers (few sampler steps: these test the pipeline, not the science; the
science figures are in benchmarks/README.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from diffinv import load_posterior
from diffinv.cli import main
from diffinv.datasets.mri_anatomy import mri_anatomy_phantoms
from diffinv.datasets.mri_io import write_bart_kspace, write_fastmri
from diffinv.datasets.mri_phantoms import mri_phantom
from diffinv.operators.mri import birdcage_maps, cartesian_mask, fft2c


def _run(args, out):
    return main(["reconstruct", *map(str, args), "--out", str(out), "--no-progress"])


def test_eht_files_combined(shared_data, tmp_path):
    root = shared_data("eht2017_m87")
    files = sorted(root.glob("*.uvfits"))
    out = tmp_path / "m87"
    assert _run(["--data", *files, "--steps", "3", "--samples", "2"], out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["kind"] == "eht" and s["settings"]["systematic"] == 0.05
    chi = s["reduced_chi2_mean_by_product"]
    assert {"cphase", "logcamp", "flux", "cphase[3]", "logcamp[0]"} <= set(chi)
    ring = s["ring_samples"]
    assert ring["n_rings"] + ring["n_failed"] == 2
    for f in ("posterior.h5", "mean.png", "std.png", "mean.fits", "std.fits", "samples.fits"):
        assert (out / f).is_file(), f
    post = load_posterior(out / "posterior.h5")
    labels = post.metadata["observations"]
    assert {(lab["date"], lab["band"]) for lab in labels} == {
        ("2017-04-05", "lo"), ("2017-04-05", "hi"), ("2017-04-06", "lo"), ("2017-04-06", "hi")
    }
    assert post.metadata["run"]["steps"] == 3 and post.metadata["source"] == "M87"
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(out / "mean.fits") as hdul:
        w = WCS(hdul[0].header)
        assert hdul[0].header["CDELT1"] < 0 < hdul[0].header["CDELT2"]  # RA grows to the left
        ra0, _ = w.wcs_pix2world([[0, 15]], 0)[0]
        ra1, _ = w.wcs_pix2world([[31, 15]], 0)[0]
        assert ra0 > ra1
        np.testing.assert_allclose(hdul[0].data[::-1], post.mean[0].numpy(), rtol=1e-5)


def test_ct_tooth_full_width(shared_data, tmp_path):
    path = shared_data("ct_tomopy_tooth") / "tooth.h5"
    out = tmp_path / "tooth"
    assert _run(["--data", path, "--steps", "3", "--samples", "2"], out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["settings"]["detector_columns_used"] == 640
    assert 250 < s["settings"]["rotation_center_cell"] < 350
    assert "fbp_relative_l2_difference_of_mean" in s
    nib = pytest.importorskip("nibabel")
    img = nib.load(out / "mean.nii")
    assert img.header.get_zooms()[:2] == (5.0, 5.0)
    assert img.shape[:2] == (128, 128)


def _bart_file(tmp_path, calib=12):
    n, c = 32, 4
    x = mri_phantom((n, n), dtype=torch.complex64)
    k = fft2c(x[0] * birdcage_maps((n, n), c, dtype=torch.complex64))
    g = torch.Generator().manual_seed(0)
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g))
    k = k + 0.02 * noise
    rows = torch.zeros(n, dtype=torch.bool)
    rows[::2] = True
    rows[n // 2 - calib // 2 : n // 2 + calib // 2] = True
    return write_bart_kspace(tmp_path / "scan", k * rows[None, :, None], readout_inverted=True)


def test_mri_bart_file(tmp_path):
    pytest.importorskip("nibabel")
    base = _bart_file(tmp_path)
    out = tmp_path / "mri"
    assert _run(["--data", f"{base}.cfl", "--steps", "3", "--samples", "2"], out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["kind"] == "mri" and s["settings"]["coils"] == 4
    assert s["settings"]["normalisation"] > 0
    # the file's noise (0.02 per real part) is found from the data, in file units
    found = s["settings"]["noise_sigma"] * s["settings"]["normalisation"]
    assert found == pytest.approx(0.02, rel=0.15), s["settings"]["noise_estimate"]
    assert {"cg_sense_iterations", "l1_wavelet_lambda"} <= set(s["baselines"])
    assert (out / "mean.nii").is_file()


def _fastmri_file(tmp_path, shape=(40, 56), center_fraction=0.25, sigma=0.005):
    """A non-square 8-coil fastMRI file: an ``mri-anatomy`` slice padded with air to
    ``shape``, equispaced R = 4 lines (columns) with a fully sampled centre, complex noise."""
    h, w = shape
    g = torch.Generator().manual_seed(1_000_123)
    x = torch.nn.functional.pad(mri_anatomy_phantoms(1, h, g)[0], ((w - h) // 2, (w - h + 1) // 2))
    k = fft2c(x[0] * birdcage_maps((h, w), 8, dtype=torch.complex64))
    k = k + sigma * torch.complex(torch.randn(k.shape, generator=g),
                                  torch.randn(k.shape, generator=g))
    mask = cartesian_mask((h, w), 4.0, center_fraction, kind="equispaced", seed=0)
    return write_fastmri(tmp_path / "scan.h5", (k * mask)[None])


def test_mri_fastmri_file_non_square(tmp_path):
    """The fastMRI path at a non-square size: ESPIRiT maps, noise estimate, the learned
    (size-agnostic) prior, figures and NIfTI all at the file's 40 x 56 grid."""
    pytest.importorskip("nibabel")
    out = tmp_path / "mri"
    assert _run(["--data", _fastmri_file(tmp_path), "--steps", "3", "--samples", "2"], out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["kind"] == "mri" and s["settings"]["coils"] == 8
    found = s["settings"]["noise_sigma"] * s["settings"]["normalisation"]
    assert found == pytest.approx(0.005, rel=0.15), s["settings"]["noise_estimate"]
    post = load_posterior(out / "posterior.h5")
    assert tuple(post.mean.shape) == (2, 40, 56) and torch.isfinite(post.samples).all()
    import nibabel as nib

    img = nib.load(out / "mean.nii")  # (x, y, 1): columns first
    assert img.shape == (56, 40, 1)
    np.testing.assert_allclose(np.asarray(img.dataobj)[:, :, 0].T,
                               post.mean.pow(2).sum(0).sqrt().numpy(), rtol=1e-4, atol=1e-6)
    for f in ("mean.png", "std.png", "samples.png"):
        assert (out / f).is_file(), f


def test_mri_calibration_too_small_for_the_image(tmp_path, capsys):
    """Nine central lines of 56 pass the 8 x 8 minimum, but ESPIRiT then crops its maps away
    inside the object: refused with the reason instead of a meaningless reconstruction."""
    out = tmp_path / "mri"
    assert _run(["--data", _fastmri_file(tmp_path, center_fraction=0.16)], out) == 2
    err = capsys.readouterr().err
    assert "scan.h5" in err and "coil maps cover only" in err and not out.exists()


def test_bad_files_write_nothing(tmp_path, shared_data, capsys):
    out = tmp_path / "out"
    base = _bart_file(tmp_path, calib=4)  # centre too small for ESPIRiT
    assert _run(["--data", f"{base}.cfl"], out) == 2
    assert "scan" in capsys.readouterr().err and not out.exists()
    root = shared_data("eht2017_m87")
    src = sorted(root.glob("*.uvfits"))[0]
    cut = tmp_path / "cut.uvfits"
    cut.write_bytes(src.read_bytes()[:20000])  # truncated
    assert _run(["--data", cut], out) == 2
    assert "cut.uvfits" in capsys.readouterr().err and not out.exists()
    assert _run(["--data", src, "--problem", "ct"], out) == 2
    assert "not ct data" in capsys.readouterr().err and not out.exists()
    import h5py

    with h5py.File(tmp_path / "noflat.h5", "w") as f:  # Data Exchange without flat fields
        f["exchange/data"] = np.ones((4, 1, 64))
    assert _run(["--data", tmp_path / "noflat.h5"], out) == 2
    err = capsys.readouterr().err
    assert "noflat.h5" in err and "data_white" in err and not out.exists()


def test_prior_that_does_not_fit_the_file_is_refused(shared_data, tmp_path, capsys):
    path = shared_data("ct_tomopy_tooth") / "tooth.h5"
    out = tmp_path / "tooth"
    # a grey-level natural-image prior on attenuation data: the units do not fit
    assert _run(["--data", path, "--prior", "natural-patches"], out) == 2
    err = capsys.readouterr().err
    assert "natural-patches" in err and "attenuation" in err and not out.exists()
    # a two-channel (complex MRI) prior on a one-channel CT image
    assert _run(["--data", path, "--prior", "mri-anatomy"], out) == 2
    assert "channels=2" in capsys.readouterr().err and not out.exists()


def test_unknown_prior_names_the_option(shared_data, tmp_path, capsys):
    path = shared_data("ct_tomopy_tooth") / "tooth.h5"
    out = tmp_path / "tooth"
    assert _run(["--data", path, "--prior", "no-such-prior"], out) == 2
    err = capsys.readouterr().err
    assert "--prior: 'no-such-prior' is neither a shipped prior" in err and not out.exists()


def test_eht_lognormal_prior_reports_images_not_white_noise(shared_data, tmp_path):
    """``--prior lognormal``: exact tempered SMC on the field's white noise; every output
    (posterior.h5, FITS, chi^2, rings) is about the images of the samples."""
    src = sorted(shared_data("eht2017_m87").glob("*095_lo*.uvfits"))[0]
    out = tmp_path / "m87"
    assert _run(["--data", src, "--prior", "lognormal", "--samples", "12", "--threads", "1",
                 "--option", "rejuvenation_moves=2"], out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["run"]["prior"] == "lognormal" and s["solver"] == "smc"
    post = load_posterior(out / "posterior.h5")
    assert post.samples.shape == (12, 1, 32, 32) and bool((post.samples > 0).all())
    assert post.metadata["latent_shape"] == [32 * 32] and post.metadata["prior"] == "lognormal"
    assert post.diagnostics["method"] == "tempered"
    assert min(post.diagnostics["ess_per_step"]) >= 0.1 * 12
    # the summaries are over the images: the mean image is the weighted mean of the images
    w = post.weights if post.weights is not None else torch.full((12,), 1 / 12)
    mean = (w.to(torch.float64)[:, None, None, None] * post.samples.to(torch.float64)).sum(0)
    torch.testing.assert_close(post.mean.to(torch.float64), mean, rtol=1e-5, atol=1e-9)
    from astropy.io import fits

    with fits.open(out / "mean.fits") as hdul:
        np.testing.assert_allclose(hdul[0].data[::-1], post.mean[0].numpy(), rtol=1e-5)
    chi = s["reduced_chi2_mean_by_product"]
    assert chi["cphase"] < 1.5 and chi["logcamp"] < 1.5
    assert post.diagnostics["reduced_chi2_mean_by_product"]["cphase[0]"] == pytest.approx(
        chi["cphase"], rel=1e-4)
    # the flux constraint (0.6 Jy, sigma 5 %) holds for the mean image (the image of the mean
    # white noise, a log-normal median, would carry less flux)
    assert abs(float(post.mean.sum()) - 0.6) < 2 * 0.03
    assert s["ring_samples"]["n_rings"] + s["ring_samples"]["n_failed"] == 12
    assert not any(m.startswith("range") for m in s["warnings"])


def test_lognormal_prior_is_refused_on_non_eht_data(tmp_path, capsys):
    pytest.importorskip("nibabel")
    out = tmp_path / "mri"
    assert _run(["--data", f"{_bart_file(tmp_path)}.cfl", "--prior", "lognormal"], out) == 2
    err = capsys.readouterr().err
    assert "--prior lognormal" in err and "EHT" in err and not out.exists()
