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
from diffinv.datasets.mri_io import write_bart_kspace
from diffinv.datasets.mri_phantoms import mri_phantom
from diffinv.operators.mri import birdcage_maps, fft2c


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
