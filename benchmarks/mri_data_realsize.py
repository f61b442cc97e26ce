"""``diffinv reconstruct --data`` on a package-written 8-coil fastMRI file at 180x230 (issue 14).

There is no real multi-coil scan on the shared machine, so the scan is written in the real
format by the package's own writer (:func:`diffinv.datasets.mri_io.write_fastmri`):

* truth: a held-out ``mri-anatomy`` slice (generator seed ``HELD_OUT_SEED + seed``, never a
  training seed; complex, magnitude in [0, 1]) rendered at ``min(H, W)`` square and zero-padded
  (air) to ``H x W`` (non-square);
* 8 birdcage coils, orthonormal centred FFT, complex white noise ``--sigma`` per real part
  (file units) on every k-space sample;
* fastMRI layout ``kspace (1, coils, H, W)``, phase-encode lines = columns, equispaced R = 4
  with 8 % fully sampled centre (ACS), unacquired samples stored as 0 as in fastMRI's
  undersampled files; ``reconstruction_rss`` is the root-sum-of-squares of the fully sampled
  noisy k-space (the fastMRI reference).

Then ``python -m diffinv.cli reconstruct --data FILE --out DIR`` with its defaults (learned
``mri-anatomy`` prior), timed, and against the reference (fastMRI SSIM/PSNR on magnitudes,
data range the reference's maximum; images back in file units with the run's
``normalisation``): the posterior mean, CG-SENSE at its best iteration count (1-48) and
L1-wavelet at its best lambda, both on the same SENSE operator (the ESPIRiT maps the CLI
uses) and tuned against the reference (the oracle choice, the most favourable to them).
Also the calibration of the posterior std: the fraction of pixels within 2 std and the
correlation of ``|error|`` with the std.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/mri_data_realsize.py --threads 1``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from diffinv import load_posterior
from diffinv.data_problems.mri import load_mri
from diffinv.datasets.mri_anatomy import mri_anatomy_phantoms
from diffinv.datasets.mri_io import write_fastmri
from diffinv.demos.realsize import HELD_OUT_SEED
from diffinv.operators.mri import birdcage_maps, cartesian_mask, fft2c, ifft2c, psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realsize_baselines as base  # noqa: E402


def write_scan(path: Path, shape: tuple[int, int], coils: int, acceleration: float,
               sigma: float, seed: int, center_fraction: float = 0.08) -> torch.Tensor:
    """Write the fastMRI file (module notes); return the reference RSS ``(H, W)`` float64."""
    h, w = shape
    g = torch.Generator().manual_seed(HELD_OUT_SEED + int(seed))
    n = min(h, w)
    x = mri_anatomy_phantoms(1, n, g)[0, 0]
    left, top = (w - n) // 2, (h - n) // 2
    x = torch.nn.functional.pad(x[None], (left, w - n - left, top, h - n - top))[0]
    k = fft2c(x * birdcage_maps((h, w), coils, dtype=torch.complex64))
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g))
    k = k + sigma * noise
    rss = ifft2c(k).abs().pow(2).sum(0).sqrt()
    mask = cartesian_mask((h, w), acceleration, center_fraction, kind="equispaced", seed=int(seed))
    write_fastmri(path, (k * mask)[None], reconstruction_rss=rss[None],
                  attrs={"acquisition": "synthetic mri-anatomy held-out slice",
                         "acceleration": float(acceleration)})
    return rss.to(torch.float64)


def scores(ref: torch.Tensor, img: torch.Tensor) -> tuple[float, float]:
    """(SSIM, PSNR dB) of magnitude ``img`` against ``ref``, both ``(H, W)``."""
    return float(ssim(ref[None], img[None])), float(psnr(ref[None], img[None]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=2, default=(180, 230))
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--acceleration", type=float, default=4.0)
    ap.add_argument("--center-fraction", type=float, default=0.08, help="ACS lines / W")
    ap.add_argument("--sigma", type=float, default=0.005, help="noise per real part, file units")
    ap.add_argument("--seed", type=int, default=0, help="held-out image (seed)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cli-args", default="", help="extra reconstruct arguments (tuning)")
    ap.add_argument("--no-l1", action="store_true", help="skip the l1-wavelet sweep")
    ap.add_argument("--baselines-only", action="store_true",
                    help="write the file and run the baselines only (no reconstruct)")
    ap.add_argument("--workdir", default=None, help="keep the file and the output here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mri-data-"))
    work.mkdir(parents=True, exist_ok=True)
    path, out = work / "scan.h5", work / "out"
    ref = write_scan(path, tuple(args.shape), args.coils, args.acceleration, args.sigma,
                     args.seed, args.center_fraction)
    print(f"file {path.name}: {args.shape[0]}x{args.shape[1]}, {args.coils} coils, "
          f"R={args.acceleration:g}, sigma={args.sigma}; threads={args.threads}")
    if not args.baselines_only:
        learned(path, out, ref, args)
    baselines(path, ref, args.no_l1)


def learned(path: Path, out: Path, ref: torch.Tensor, args) -> None:
    """Run the CLI on ``path`` and print its posterior mean's scores against ``ref``."""
    cmd = [sys.executable, "-m", "diffinv.cli", "reconstruct", "--data", str(path), "--out",
           str(out), "--threads", str(args.threads), "--no-progress", "--overwrite",
           *args.cli_args.split()]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    scale = summary["settings"]["normalisation"]
    post = load_posterior(out / "posterior.h5")
    mags = post.samples.to(torch.float64).pow(2).sum(1).sqrt() * scale  # (K, H, W)
    mean = (post.mean.to(torch.float64).pow(2).sum(0).sqrt()) * scale
    std = mags.std(0)
    err = (mean - ref).abs()
    obj = ref > 0.05 * ref.max()
    cover = float((err <= 2 * std)[obj].double().mean())
    corr = float(torch.corrcoef(torch.stack([err[obj], std[obj]]))[0, 1])
    run = summary["run"]
    print(f"noise estimate {summary['settings']['noise_sigma'] * scale:.5f} "
          f"(true {args.sigma}; {summary['settings']['noise_estimate']})")
    q = scores(ref, mean)
    print(f"learned ({run['solver']} {run['steps']} steps, {run['samples']} samples) "
          f"SSIM {q[0]:.3f} PSNR {q[1]:.2f} dB  wall {wall:.1f} s (CLI, whole command)  "
          f"object pixels within 2 std {cover:.3f}, corr(|err|, std) {corr:.2f}")


def baselines(path: Path, ref: torch.Tensor, no_l1: bool) -> None:
    """CG-SENSE and l1-wavelet on the CLI's SENSE operator, tuned against ``ref``."""
    demo = load_mri(path)
    scale = demo.metadata["settings"]["normalisation"]
    mri, y = demo.problem.operator.outer, demo.problem.y
    rows = {"CG-SENSE": base.cg_sense_best(mri, y, ref / scale)}
    if not no_l1:
        rows["L1-wavelet"] = base.l1_wavelet_best(mri, y, ref / scale)
    for label, (img, choice, secs) in rows.items():
        q = scores(ref, img.to(torch.float64) * scale)
        print(f"{label:10s} SSIM {q[0]:.3f} PSNR {q[1]:.2f} dB  wall {secs:.1f} s "
              f"(chosen setting alone)  best setting {choice}")


if __name__ == "__main__":
    main()
