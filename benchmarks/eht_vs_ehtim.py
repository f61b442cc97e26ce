"""diffinv's M87 reconstruction read back by eht-imaging: closure chi^2 and imaging time.

Run: ``PYTHONPATH=src python benchmarks/eht_vs_ehtim.py OUT_DIR [UVFITS ...]`` where
``OUT_DIR`` holds the outputs of ``diffinv reconstruct --data UVFITS ...`` (``mean.fits``,
``summary.json``); without UVFITS arguments the files named in ``summary.json`` are used.
Needs ``pip install ehtim`` (optional, never a runtime dependency of diffinv).
Thread count: 1 (``OMP_NUM_THREADS=1``).

For each file eht-imaging prepares the data itself (``add_scans``, scan-averaged
``avg_coherent``, ``add_fractional_noise`` with diffinv's systematic fraction) and reads our
``mean.fits``.  Three reduced chi^2 are printed per product (closure phases, log closure
amplitudes):

* **diffinv** -- what ``summary.json`` reports;
* **ehtim, same closures** -- eht-imaging's own ``Obsdata.chisq`` (its Fourier transform of
  the FITS image, its pixel pulse, its chi^2 formula, its scan-averaged visibilities and
  sigmas) on the closure set diffinv used: every closure diffinv kept is rebuilt from
  eht-imaging's visibility table (same scan, same baselines) and handed to ``chisq`` as a
  pre-computed table with ``maxset=True`` (no reduction) and ``debias=False`` (diffinv's log
  closure amplitudes are not debiased: ``ln|V|`` is unbiased to second order).  The ratio of
  this column to diffinv's is the 2 % check of the issue;
* **ehtim, own set** -- eht-imaging's default minimal closure set and debiasing, for
  reference: it is a different data set (eht-imaging forms closures only among baselines
  whose scan-averaged time stamps coincide, and picks a reference-station minimal set).

Then eht-imaging's own closure-only RML imaging (closure phases + log closure amplitudes +
flux, Gaussian initial image) runs on the same files and its wall time is printed beside
diffinv's wall time from ``summary.json`` as a ratio.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from diffinv.interop.ehtim import closure_chi2, match_rows, with_visibilities  # noqa: E402
from diffinv.operators.interferometry.combine import read_observation  # noqa: E402


def prepare(eh, path: Path, systematic: float):
    obs = eh.obsdata.load_uvfits(str(path))
    obs.add_scans()
    return obs.avg_coherent(0.0, scan_avg=True).add_fractional_noise(systematic)


def main(argv: list[str]) -> None:
    try:
        import ehtim as eh
    except ImportError:
        sys.exit("eht_vs_ehtim: needs eht-imaging (pip install ehtim)")
    out = Path(argv[0])
    summary = json.loads((out / "summary.json").read_text())
    files = [Path(p) for p in (argv[1:] or summary["data_files"])]
    systematic = summary["settings"]["systematic"]
    im = eh.image.load_fits(str(out / "mean.fits"))
    # diffinv's pixels are boxes (``Visibilities(pulse="box")``, the default of the EHT
    # problems); eht-imaging's default pixel response is a triangle.  The pixel response is
    # part of the image model, so [A] and [B] use the matching pulse; [C] keeps its default.
    im_box = im.copy()
    im_box.pulse = eh.observing.pulses.rectPulse2D
    ours = summary["reduced_chi2_mean_by_product"]
    lines = []
    obs_all = []
    for i, path in enumerate(files):
        obs = prepare(eh, path, systematic)
        obs_all.append(obs)
        mine = read_observation(path, systematic, scan_average=True)
        rows, rev = match_rows(obs, mine)
        theirs = np.where(rev, np.conj(obs.data["vis"][rows]), obs.data["vis"][rows])
        dv = float(np.max(np.abs(theirs - mine.vis.numpy()) / np.abs(mine.vis.numpy())))
        own = {d: float(obs.chisq(im, dtype=d, ttype="direct")) for d in ("cphase", "logcamp")}
        own_avg = closure_chi2(obs, mine, im_box, rows, rev)
        same = closure_chi2(with_visibilities(obs, mine, rows, rev), mine, im_box, rows, rev)
        sizes = dict(zip(("cphase", "logcamp"), summary_sizes(mine)))
        for d in ("cphase", "logcamp"):
            d_ours = float(ours[f"{d}[{i}]"])
            lines.append(f"{path.name[17:32]:15s}  {d:7s}  {sizes[d]:4d}  "
                         f"{d_ours:7.3f}  {same[d]:7.3f}  {same[d] / d_ours:6.4f}  "
                         f"{own_avg[d]:7.3f}  {own_avg[d] / d_ours:6.3f}  {own[d]:7.3f}")
        lines.append(f"{'':15s}  max |V_ehtim - V_diffinv| / |V| after scan averaging: {dv:.2f}")
    print(f"systematic noise {systematic:.0%}; diffinv chi^2 from {out / 'summary.json'}")
    print("file             product     N  diffinv  ehtim[A]  ratio   ehtim[B]  ratio  "
          "ehtim[C]")
    print("[A] eht-imaging on diffinv's scan-averaged visibilities and closure set; "
          "[B] eht-imaging's own scan averaging (unweighted mean), diffinv's closure set; "
          "[A], [B] with box pixels as diffinv; [C] eht-imaging's own averaging, closure set, "
          "debiasing and triangle pixels")
    print("\n".join(lines))
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


def summary_sizes(obs) -> tuple[int, int]:
    """Numbers of closure phases and log closure amplitudes diffinv forms from ``obs``."""
    from diffinv.operators.interferometry.closures import closure_quadrangles, closure_triangles

    return closure_triangles(obs)[0].shape[0], closure_quadrangles(obs).shape[0]


if __name__ == "__main__":
    main(sys.argv[1:])
