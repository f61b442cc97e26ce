"""deepinv's DPS and DiffPIR on the exactness benchmark's mixture problems (dx=8).

deepinv's samplers work on images in fixed ranges: DPS clips denoised estimates to
``[-1, 1]`` and DiffPIR runs in ``[0, 1]``.  Both are given the *same* prior and problem, in
rescaled units: ``x = S u`` with ``S`` = largest mean coordinate + 5 (so the clip removes
essentially no posterior mass), the denoiser ``D_u(u, s) = D(S u, S s) / S`` and the operator
``A S`` (for DiffPIR's ``[0, 1]`` range the affine map ``x = S (2 v - 1)`` is folded into the
data: ``y + S A 1 = 2 S A v + n``).  Samples are mapped back to ``x`` before scoring.
"""

from __future__ import annotations

import time
import warnings

import torch


def _wrap(prior, scale: float, shape: tuple[int, ...], zero_one: bool):
    import deepinv as dinv

    class Wrapped(dinv.models.Denoiser):
        """Our exact mixture denoiser in deepinv's units (images (B, 1, 1, n))."""

        def forward(self, x, sigma, *args, **kwargs):
            b = x.shape[0]
            sig = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1)
            sig = sig.expand(b) if sig.numel() == 1 else sig
            u = x.reshape(b, *shape).to(torch.float64)
            if zero_one:  # v in [0, 1]: u = 2 v - 1, sigma_u = 2 sigma_v
                u, sig = 2 * u - 1, 2 * sig
            out = prior(scale * u, scale * sig) / scale
            if zero_one:
                out = (out + 1) / 2
            return out.reshape(x.shape).to(x.dtype)

    return Wrapped()


def _physics(a: torch.Tensor, sigma_y: float):
    import deepinv as dinv

    def fwd(v):
        return v.reshape(v.shape[0], -1).to(a.dtype) @ a.T

    def adj(y):
        return (y.to(a.dtype) @ a).reshape(y.shape[0], 1, 1, -1)

    return dinv.physics.LinearPhysics(A=fwd, A_adjoint=adj,
                                      noise_model=dinv.physics.GaussianNoise(sigma=sigma_y))


def run_deepinv(grid_mixture, random_problem, sw, noise_floor, n, steps, n_ref, seeds=(0, 1)):
    """Print SW / floor, NFE and wall time of deepinv's DPS and DiffPIR (dx=8, dy in 1, 2, 4)."""
    print("\ndeepinv baselines on the same prior and problems (dx=8):")
    try:
        import deepinv as dinv
    except Exception as exc:  # pragma: no cover - optional dependency
        print(f"  deepinv could not be imported ({exc}); skipped")
        return
    for dy in (1, 2, 4):
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            prior = grid_mixture((8,), g)
            problem = random_problem(prior, dy, g)
            post = prior.posterior(problem)
            ref = post.sample(n_ref, g)
            floor = noise_floor(post, ref, n, seed)
            a = problem.operator.matrix
            y = problem.y
            sigma_y = float(problem.sigma)
            scale = float(prior.means.abs().max()) + 5.0
            runs = {}
            # DPS (VP DDPM schedule, the paper's setting), states in u = x / S
            try:
                model = dinv.sampling.DPS(_wrap(prior, scale, (8,), False), num_steps=steps,
                                          minus_one_one=False, dtype=torch.float64,
                                          rng=torch.Generator().manual_seed(seed))
                phys = _physics(scale * a, sigma_y)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    u = model(y.expand(n, -1).to(torch.float64), phys, x_init=(n, 1, 1, 8),
                              seed=seed)
                runs["deepinv.DPS"] = (scale * u.reshape(n, 8), time.perf_counter() - start)
            except Exception as exc:
                print(f"  deepinv.DPS failed (dy={dy}, seed={seed}): {type(exc).__name__}: {exc}")
            # DiffPIR, [0, 1] range: x = S (2 v - 1)
            try:
                model = dinv.sampling.DiffPIR(_wrap(prior, scale, (8,), True),
                                              dinv.optim.data_fidelity.L2(), sigma=sigma_y,
                                              max_iter=steps)
                phys = _physics(2 * scale * a, sigma_y)
                y01 = (y + scale * a.sum(1)).expand(n, -1).to(torch.float32)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    v = model(y01, phys, seed=seed)
                x = scale * (2 * v.reshape(n, 8).to(torch.float64) - 1)
                runs["deepinv.DiffPIR"] = (x, time.perf_counter() - start)
            except Exception as exc:
                print(f"  deepinv.DiffPIR failed (dy={dy}, seed={seed}): "
                      f"{type(exc).__name__}: {exc}")
            for name, (x, wall) in runs.items():
                finite = bool(torch.isfinite(x).all())
                ratio = sw(x, ref, seed=seed) / floor if finite else float("nan")
                print(f"  x(8,)      dy={dy:<3d} seed={seed:<3d} {name:18s} SW/floor={ratio:7.2f} "
                      f"NFE={steps:<4d} wall={wall:6.2f}s")
