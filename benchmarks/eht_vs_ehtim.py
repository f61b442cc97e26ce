"""diffinv's M87 reconstruction read back by eht-imaging: closure chi^2 and imaging time.

Run: ``PYTHONPATH=src python benchmarks/eht_vs_ehtim.py OUT_DIR [UVFITS ...]`` where
``OUT_DIR`` holds the outputs of ``diffinv reconstruct --data UVFITS ...`` (``mean.fits``,
``summary.json``).  Needs ``pip install ehtim`` (optional, never a runtime dependency of
diffinv).  For each file, the data are prepared the same way in both packages (scan
averaging, the same fractional systematic noise); eht-imaging reads our ``mean.fits`` and
reports its closure-phase and log-closure-amplitude reduced chi^2, printed beside diffinv's
(from ``summary.json``) with their ratio.  Then eht-imaging's own closure-only imaging
(closure phases + log closure amplitudes + flux, its default regularisers, Gaussian
initial image) runs on the combined files and its wall time is printed beside diffinv's
wall time from ``summary.json`` as a ratio.  Thread count: 1 (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str]) -> None:
    try:
        import ehtim as eh
    except ImportError:
        sys.exit("eht_vs_ehtim: needs eht-imaging (pip install ehtim)")
    out = Path(argv[0])
    summary = json.loads((out / "summary.json").read_text())
    files = argv[1:] or summary["files"]
    systematic = summary["settings"]["systematic"]
    im = eh.image.load_fits(str(out / "mean.fits"))
    ours = summary["reduced_chi2_mean_by_product"]
    print(f"systematic noise {systematic:.0%}; diffinv chi^2 from {out / 'summary.json'}")
    print("file                                      product  diffinv  ehtim   ratio")
    obs_all = []
    for i, path in enumerate(files):
        obs = eh.obsdata.load_uvfits(str(path))
        obs.add_scans()
        obs = obs.avg_coherent(0.0, scan_avg=True).add_fractional_noise(systematic)
        obs_all.append(obs)
        for ours_key, dtype in (("cphase", "cphase"), ("logcamp", "logcamp")):
            theirs = float(obs.chisq(im, dtype=dtype, ttype="direct"))
            mine = float(ours[f"{ours_key}[{i}]"])
            print(f"{Path(path).name[:40]:40s}  {ours_key:7s}  {mine:7.3f}  {theirs:6.3f}  "
                  f"{theirs / mine:6.3f}")
    # eht-imaging closure-only imaging of the same data (all files), timed
    fov = im.fovx()
    gauss = eh.image.make_square(obs_all[0], im.xdim, fov)
    gauss = gauss.add_gauss(0.6, (50 * eh.RADPERUAS, 50 * eh.RADPERUAS, 0, 0, 0))
    t0 = time.perf_counter()
    for obs in obs_all:
        imgr = eh.imager.Imager(obs, gauss, gauss, 0.6, data_term={"cphase": 100, "logcamp": 100},
                                reg_term={"simple": 1, "tv2": 1, "flux": 100}, maxit=200,
                                ttype="direct")
        imgr.make_image_I(show_updates=False)
    t_ehtim = time.perf_counter() - t0
    t_ours = float(summary["wall_seconds"])
    print(f"wall time: diffinv {t_ours:.1f} s (posterior, {summary['n_samples']} samples), "
          f"eht-imaging {t_ehtim:.1f} s (one RML image per file); ratio diffinv/ehtim "
          f"{t_ours / t_ehtim:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
