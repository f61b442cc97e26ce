"""Built-in problems at real size (128x128 by default) with a learned prior by default.

``mri-brain-r4``, ``mri-brain-r8``: a complex brain-like phantom (magnitude in [0, 1],
dimensionless; smooth background phase) seen by 8 simulated birdcage coils on a Cartesian
grid, fastMRI-style equispaced line mask at R = 4 (8 % fully sampled centre) or R = 8 (4 %),
complex white Gaussian noise on the acquired samples (:func:`.mri.make_mri_problem`).

``ct-sparse-view-128``: parallel-beam CT, 32 views evenly spaced over 180 degrees;
``ct-limited-angle-128``: 120 views at 1-degree steps over a 120-degree arc.  Attenuation in
1/mm over a 400 mm field of view (the body size of the thorax and abdomen slices of
``ct-anatomy``); photon counts ``Poisson(I0 exp(-A x))`` with ``I0 = 1e5`` per detector cell
(:class:`~diffinv.operators.ct.noise.TransmissionPoisson`) are turned into line integrals
``-log(y / I0)`` with the delta-method Gaussian noise model
(:func:`~diffinv.operators.ct.noise.gaussian_log_data`, the penalised weighted least-squares
model of clinical iterative CT), so the problem is linear-Gaussian and samplers take exact
conjugate-gradient data steps.

Default prior: the shipped size-agnostic learned prior of the modality, the first of
:data:`MRI_PRIORS` / :data:`CT_PRIORS` that is installed (``mri-anatomy``, trained on crops
of anatomical phantoms rendered at 128-320 pixels; ``ct-anatomy-128``, the CT one
(``ct-anatomy``) fine-tuned on whole 128x128 slices with attention over the whole coarse
grid, so that it models organ-scale structure such as what the missing wedge of limited
angle removes; else the 32x32-trained ``mri-phantom``/``ct-phantom``, applied at full size
since their UNet is fully convolutional).  ``prior=`` takes another shipped name, a
checkpoint path or a denoiser; names and paths are checked for channels, size limits and
units (:func:`.prior_choice.prior_for_problem`).

Test images: drawn from the training generator of the default prior (its model card's
``dataset``) with a generator seeded ``HELD_OUT_SEED + seed``.  The priors are trained on
pools seeded ``training_seed * 1_000_003 + 7919 * pool + 1`` (training seed 0, 3 for
``ct-anatomy-128``) and the model cards' held-out evaluation uses ``10_000 + seed``, so these
images are never training images.  They do not depend on
``prior=`` (a swapped prior sees the same truth).

Solver defaults and how they compare with CG-SENSE, L1-wavelet, FBP and TV on held-out
images: ``benchmarks/realsize_problems.py`` and ``benchmarks/README.md``, "Built-in
problems at 128x128 (issue 14)".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..operators import InverseProblem, RealToComplex
from ..operators.ct import ParallelBeamRadon
from ..operators.ct.noise import TransmissionPoisson, gaussian_log_data
from .mri import make_mri_problem
from .prior_choice import first_shipped, prior_for_problem
from .registry import Demo, register_demo

__all__ = [
    "MRI_PRIORS", "CT_PRIORS", "HELD_OUT_SEED", "held_out_images", "default_prior_name",
    "build_mri_brain", "build_ct_realsize",
]

#: learned MRI priors in order of preference (the first installed is the default)
MRI_PRIORS = ("mri-anatomy", "mri-phantom")
#: learned CT priors in order of preference: first the prior fine-tuned on whole 128x128
#: slices with global attention (organ-scale context; better than ``ct-anatomy`` on both CT
#: problems, benchmarks/README.md, "CT limited angle: a prior fine-tuned on whole 128x128")
CT_PRIORS = ("ct-anatomy-128", "ct-anatomy", "ct-phantom")
#: test images use generator seeds ``HELD_OUT_SEED + seed`` (never a training seed)
HELD_OUT_SEED = 1_000_000
CG_MAX_ITER = 10  # MRI: 8-coil FFTs make CG the dominant cost at 128x128
CT_CG_MAX_ITER = 30  # CT: projections are cheap; 10 iterations lost 0.02 SSIM (seed 0)
MRI_SOLVER_DEFAULTS = {"solver": "daps", "steps": 50,
                       "options": {"ode_steps": 1, "cg_max_iter": CG_MAX_ITER}}
CT_SOLVER_STEPS = 100  # CT: DAPS bias falls with the levels; 50 lost to TV in SSIM (README)
#: limited angle: more levels, started at a lower noise level (1/mm; 10x the prior's
#: normalisation scale 0.024/mm instead of its 80x) so that fewer levels are spent where the
#: denoiser returns the mean image; tuned on held-out seed 10 only (benchmarks/README.md,
#: "CT limited angle: tuning DAPS")
CT_LIMITED_STEPS = 200
CT_LIMITED_SIGMA_MAX = 0.24
MRI_UNITS = (("complex",), "complex images (real, imag) with magnitude ~[0, 1], dimensionless")
CT_UNITS = (("attenuation",), "linear attenuation in 1/mm")


def default_prior_name(modality: str) -> str:
    """The default learned prior of ``modality`` (``"mri"`` or ``"ct"``)."""
    if modality not in ("mri", "ct"):
        raise ValueError(f"modality: expected 'mri' or 'ct', got {modality!r}")
    return first_shipped(MRI_PRIORS if modality == "mri" else CT_PRIORS)


def held_out_images(modality: str, n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` held-out test images ``(n, C, size, size)`` float32 of ``modality``.

    Drawn from the registered data set the default prior was trained on (its whole-slice
    version when the prior was trained on ``NAME-crops``), with a generator seeded
    ``HELD_OUT_SEED + seed`` (see the module notes).  MRI images are 2 channels
    (real, imag); CT images are attenuation in 1/mm.
    """
    from ..datasets.registry import get_dataset, list_datasets
    from ..priors import load

    dataset = load(default_prior_name(modality)).dataset
    if dataset is None:
        raise ValueError(f"prior: the default {modality} prior names no training data set")
    if dataset.endswith("-crops") and dataset.removesuffix("-crops") in list_datasets():
        dataset = dataset.removesuffix("-crops")  # whole slices, not the training crops
    g = torch.Generator().manual_seed(HELD_OUT_SEED + int(seed))
    return get_dataset(dataset).sample(int(n), int(size), g)


def _prior(spec, modality: str, problem: str, image_shape: tuple[int, ...]
           ) -> tuple[Callable, str]:
    """The denoiser and its label (shipped name, path or type) for ``spec``."""
    units, text = MRI_UNITS if modality == "mri" else CT_UNITS
    if spec is None:
        spec = default_prior_name(modality)
    den = prior_for_problem(spec, problem, image_shape, units, text)
    card = getattr(den, "card", None) or {}
    label = card.get("name") or (spec if isinstance(spec, str) else type(den).__name__)
    return den, str(label)


def build_mri_brain(name: str, acceleration: float, seed: int = 0, size: int = 128,
                    n_coils: int = 8, noise_sigma: float = 0.005, prior=None) -> Demo:
    """The ``mri-brain-r*`` problems (see the module notes); ``seed`` fixes all draws."""
    size = int(size)
    truth = RealToComplex()(held_out_images("mri", 1, size, seed))
    den, label = _prior(prior, "mri", name, (2, size, size))
    problem, den, x_true, mri = make_mri_problem(
        size, int(n_coils), acceleration, noise_sigma=noise_sigma, seed=int(seed), prior=den,
        truth=truth)
    return Demo(
        problem=problem,
        prior=den,
        x_true=x_true,
        description=(
            f"{size}x{size} complex brain-like phantom (held-out; dimensionless magnitude, "
            f"real/imag as 2 channels) from {n_coils}-coil Cartesian k-space, equispaced "
            f"R={acceleration:g} ({mri.acceleration:.2f} actual), complex Gaussian noise "
            f"sigma={noise_sigma} per real part; learned prior {label!r}"
        ),
        # DAPS with exact CG data steps (the noise is a masked GaussianNoise) and one
        # denoiser call per level; tuned in benchmarks/realsize_problems.py
        solver_defaults=dict(MRI_SOLVER_DEFAULTS),
        to_image=lambda x: torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2),
        metadata={"units": "dimensionless", "modality": "MRI", "coils": int(n_coils),
                  "acceleration": float(acceleration), "k_space": "orthonormal centred FFT",
                  "prior": label, "truth": f"held-out seed {HELD_OUT_SEED + int(seed)}"},
    )


@register_demo("mri-brain-r4")
def build_mri_r4(seed: int = 0, size: int = 128, n_coils: int = 8, noise_sigma: float = 0.005,
                 prior=None) -> Demo:
    """Complex 128x128 brain-like phantom from 8-coil Cartesian k-space at R=4, learned prior."""
    return build_mri_brain("mri-brain-r4", 4, seed, size, n_coils, noise_sigma, prior)


@register_demo("mri-brain-r8")
def build_mri_r8(seed: int = 0, size: int = 128, n_coils: int = 8, noise_sigma: float = 0.005,
                 prior=None) -> Demo:
    """Complex 128x128 brain-like phantom from 8-coil Cartesian k-space at R=8, learned prior."""
    return build_mri_brain("mri-brain-r8", 8, seed, size, n_coils, noise_sigma, prior)


def build_ct_realsize(name: str, angles: torch.Tensor, scan: str, seed: int = 0,
                      size: int = 128, I0: float = 1e5, fov_mm: float = 400.0,
                      prior=None, steps: int = CT_SOLVER_STEPS,
                      extra_options: dict | None = None) -> Demo:
    """The ``ct-*-128`` problems (see the module notes); ``seed`` fixes truth and counts.

    ``angles`` are the view angles in radians; ``scan`` describes them in words; ``steps``
    and ``extra_options`` (added to DAPS's ``ode_steps`` and ``cg_max_iter``; sampler
    settings such as ``sigma_max`` in 1/mm included) set the default run.
    """
    size = int(size)
    g = torch.Generator().manual_seed(int(seed))
    x_true = held_out_images("ct", 1, size, seed)
    pixel = float(fov_mm) / size
    op = ParallelBeamRadon(size, angles, detector_spacing=pixel, pixel_size=pixel)
    counts = TransmissionPoisson(I0=float(I0)).sample(op(x_true), generator=g)
    y, noise = gaussian_log_data(counts, float(I0))
    den, label = _prior(prior, "ct", name, (1, size, size))
    return Demo(
        problem=InverseProblem(op, noise, y),
        prior=den,
        x_true=x_true,
        description=(
            f"{size}x{size} held-out phantom (attenuation, 1/mm; {pixel:g} mm pixels) from "
            f"{scan} parallel-beam views: transmission Poisson counts, I0={float(I0):g}, as log "
            f"data with the Gaussian (delta-method) noise model; learned prior {label!r}"
        ),
        # a linear-Gaussian problem: DAPS with exact conjugate-gradient data steps and one
        # denoiser call per level (the transmission-Poisson likelihood with HMC data steps
        # did not fit the data at this dose); benchmarks/realsize_problems.py
        solver_defaults={"solver": "daps", "steps": int(steps),
                         "options": {"ode_steps": 1, "cg_max_iter": CT_CG_MAX_ITER,
                                     **(extra_options or {})}},
        to_image=lambda x: x[:, 0],
        metadata={
            "units": "1/mm",
            "physical_range": (0.0, float("inf")),  # attenuation is non-negative
            "pixel_size_mm": pixel,
            "n_angles": op.n_angles,
            "scan": scan,
            "I0": float(I0),
            "geometry": "parallel",
            "prior": label,
            "truth": f"held-out seed {HELD_OUT_SEED + int(seed)}",
        },
    )


@register_demo("ct-sparse-view-128")
def build_ct_sparse(seed: int = 0, size: int = 128, n_angles: int = 32, I0: float = 1e5,
                    fov_mm: float = 400.0, prior=None) -> Demo:
    """Sparse-view CT (32 views over 180 deg) of a 128x128 phantom, learned prior."""
    angles = torch.arange(int(n_angles), dtype=torch.float64) * (math.pi / int(n_angles))
    return build_ct_realsize("ct-sparse-view-128", angles, f"{int(n_angles)} (over 180 deg)",
                             seed, size, I0, fov_mm, prior)


@register_demo("ct-limited-angle-128")
def build_ct_limited(seed: int = 0, size: int = 128, arc_deg: float = 120.0,
                     step_deg: float = 1.0, I0: float = 1e5, fov_mm: float = 400.0,
                     prior=None) -> Demo:
    """Limited-angle CT (120-deg arc, 1-deg steps) of a 128x128 phantom, learned prior."""
    if not 0.0 < float(arc_deg) < 180.0:
        raise ValueError(f"arc_deg: expected an arc in (0, 180) degrees, got {arc_deg!r}")
    if not 0.0 < float(step_deg) <= float(arc_deg):
        raise ValueError(f"step_deg: expected a step in (0, arc_deg], got {step_deg!r}")
    n = int(round(float(arc_deg) / float(step_deg)))
    angles = torch.arange(n, dtype=torch.float64) * math.radians(float(step_deg))
    return build_ct_realsize("ct-limited-angle-128", angles,
                             f"{n} (1 per {float(step_deg):g} deg over {float(arc_deg):g} deg)",
                             seed, size, I0, fov_mm, prior, steps=CT_LIMITED_STEPS,
                             extra_options={"sigma_max": CT_LIMITED_SIGMA_MAX})
