"""Cross-checks with eht-imaging (``ehtim``): our closure sets as eht-imaging tables.

eht-imaging (Chael et al. 2016, ApJ 829, 11; 2018, ApJ 857, 23) is the imaging library of
the EHT collaboration.  It is an optional package (``pip install ehtim``), never a runtime
dependency of diffinv: everything here imports it on demand.

The two packages form different closure sets from the same file -- diffinv keeps the
least-noisy independent closures of each scan (:func:`~diffinv.operators.interferometry.
closures.closure_triangles`), eht-imaging a reference-station minimal set among baselines
whose time stamps coincide -- and average scans differently (inverse-variance weights in
diffinv, an unweighted mean in eht-imaging).  To compare chi^2 "on the same data",
:func:`closure_tables` rebuilds *our* closures from an eht-imaging visibility table, and
:func:`closure_chi2` evaluates eht-imaging's own ``Obsdata.chisq`` (its Fourier transform of
the image, its chi^2 formulas) on them, optionally with our scan-averaged visibilities
substituted for its own (:func:`with_visibilities`).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ..operators.interferometry.closures import closure_quadrangles, closure_triangles
from ..operators.interferometry.observation import Observation

__all__ = ["match_rows", "closure_tables", "with_visibilities", "closure_chi2"]


def _ehtim():
    try:
        return importlib.import_module("ehtim")
    except ImportError as err:
        raise ImportError(
            "ehtim: cross-checks with eht-imaging need the optional package 'ehtim' "
            "(pip install ehtim); it is not a dependency of diffinv"
        ) from err


def match_rows(obs_eh: Any, observation: Observation) -> tuple[np.ndarray, np.ndarray]:
    """eht-imaging's row for each of our visibilities, and whether it is stored reversed.

    Rows are matched by baseline (either orientation) and nearest time: after scan averaging
    diffinv gives every record of a scan the scan's mean time, eht-imaging each baseline its
    own mean time.

    Parameters
    ----------
    obs_eh : ehtim.obsdata.Obsdata
        eht-imaging's table of the same file, prepared the same way (scan-averaged).
    observation : Observation
        Ours, ``M`` visibilities.

    Returns
    -------
    rows : numpy.ndarray
        ``(M,)`` int64 row numbers in ``obs_eh.data``.
    reversed : numpy.ndarray
        ``(M,)`` bool: eht-imaging stores the baseline as ``(t2, t1)`` (conjugate visibility,
        negated ``(u, v)``).
    """
    data = obs_eh.data
    names = observation.stations
    rows = np.empty(len(observation), dtype=np.int64)
    rev = np.zeros(len(observation), dtype=bool)
    for k, (i, j, t) in enumerate(zip(observation.t1.tolist(), observation.t2.tolist(),
                                      observation.time.tolist())):
        a, b = names[i], names[j]
        fwd = (data["t1"] == a) & (data["t2"] == b)
        back = (data["t1"] == b) & (data["t2"] == a)
        cand = np.flatnonzero(fwd | back)
        if cand.size == 0:
            raise ValueError(f"obs_eh: baseline {a}-{b} of the observation is not in its table")
        r = cand[np.argmin(np.abs(data["time"][cand] - t))]
        rows[k], rev[k] = r, bool(back[r])
    return rows, rev


def with_visibilities(obs_eh: Any, observation: Observation, rows: np.ndarray,
                      rev: np.ndarray) -> Any:
    """A copy of ``obs_eh`` whose matched rows hold our visibilities and sigmas."""
    out = obs_eh.copy()
    vis = observation.vis.numpy()
    out.data["vis"][rows] = np.where(rev, np.conj(vis), vis)
    out.data["sigma"][rows] = observation.sigma.numpy()
    return out


def _oriented(data, rows, rev, q: int) -> tuple[complex, float, float, float]:
    """Visibility, u, v, sigma of our visibility ``q`` in our orientation."""
    r, s = rows[q], -1.0 if rev[q] else 1.0
    v = data["vis"][r]
    return (np.conj(v) if rev[q] else v), s * data["u"][r], s * data["v"][r], data["sigma"][r]


def closure_tables(obs_eh: Any, observation: Observation, rows: np.ndarray,
                   rev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our closure phases and log closure amplitudes as eht-imaging tables.

    The closure sets are ours (:func:`closure_triangles`, :func:`closure_quadrangles` of
    ``observation``); values and sigmas are formed from ``obs_eh``'s visibilities:
    ``psi = arg(V_ab V_bc conj(V_ac))`` in degrees with ``sigma = sqrt(sum (sigma_b/|V_b|)^2)``
    (degrees), and ``ln|V_n1| + ln|V_n2| - ln|V_d1| - ln|V_d2|`` with the same propagated
    sigma, not debiased (as ours).

    Returns
    -------
    cphase, logcamp : numpy.ndarray
        Record arrays with eht-imaging's ``DTCPHASE`` and ``DTCAMP`` dtypes.
    """
    const = _ehtim().const_def
    data = obs_eh.data
    names = observation.stations
    tri, _ = closure_triangles(observation)
    cphase = np.zeros(tri.shape[0], dtype=const.DTCPHASE)
    for k, (ab, bc, ac) in enumerate(tri.tolist()):
        (v1, u1, w1, s1), (v2, u2, w2, s2), (v3, u3, w3, s3) = (
            _oriented(data, rows, rev, q) for q in (ab, bc, ac))
        a, b = names[int(observation.t1[ab])], names[int(observation.t2[ab])]
        c = names[int(observation.t2[bc])]
        sig = np.sqrt((s1 / abs(v1)) ** 2 + (s2 / abs(v2)) ** 2 + (s3 / abs(v3)) ** 2)
        # V_ca = conj(V_ac): the third side at (-u_ac, -v_ac)
        cphase[k] = (data["time"][rows[ab]], a, b, c, u1, w1, u2, w2, -u3, -w3,
                     np.degrees(np.angle(v1 * v2 * np.conj(v3))), np.degrees(sig))
    quads = closure_quadrangles(observation)
    logcamp = np.zeros(quads.shape[0], dtype=const.DTCAMP)
    for k, quad in enumerate(quads.tolist()):
        parts = [_oriented(data, rows, rev, q) for q in quad]
        st = [names[int(observation.t1[quad[0]])], names[int(observation.t2[quad[0]])],
              names[int(observation.t1[quad[1]])], names[int(observation.t2[quad[1]])]]
        amp = [abs(p[0]) for p in parts]
        sig = np.sqrt(sum((p[3] / a) ** 2 for p, a in zip(parts, amp)))
        value = np.log(amp[0]) + np.log(amp[1]) - np.log(amp[2]) - np.log(amp[3])
        logcamp[k] = (data["time"][rows[quad[0]]], *st,
                      *[c for p in parts for c in (p[1], p[2])], value, sig)
    return cphase, logcamp


def closure_chi2(obs_eh: Any, observation: Observation, image: Any,
                 rows: np.ndarray, rev: np.ndarray) -> dict[str, float]:
    """eht-imaging's reduced chi^2 of ``image`` on our closure set built from ``obs_eh``.

    Parameters
    ----------
    obs_eh : ehtim.obsdata.Obsdata
        Visibility table the closures are formed from (e.g. :func:`with_visibilities`).
    observation : Observation
        Ours: defines the closure set.
    image : ehtim.image.Image
        The image (e.g. our FITS file read by ``ehtim.image.load_fits``); its ``pulse`` is
        its pixel response (ours is a box: ``ehtim.observing.pulses.rectPulse2D``).
    rows, rev : numpy.ndarray
        From :func:`match_rows`.

    Returns
    -------
    dict
        ``{"cphase": chi2, "logcamp": chi2}`` as ``Obsdata.chisq`` computes them
        (``maxset=True``: the table is used as given; ``debias=False``).
    """
    obs = obs_eh.copy()
    obs.cphase, obs.logcamp = closure_tables(obs_eh, observation, rows, rev)
    return {
        "cphase": float(obs.chisq(image, dtype="cphase", ttype="direct", maxset=True)),
        "logcamp": float(obs.chisq(image, dtype="logcamp", ttype="direct", maxset=True,
                                   debias=False)),
    }
