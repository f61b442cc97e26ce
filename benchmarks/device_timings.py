"""Operators and one sampler step on an accelerator beside the CPU (issue 18).

For each case the same call runs on the CPU (the package's default thread count, printed)
and on ``--device`` (default ``cuda``), batch 1 and batch 8, minimum of ``--repeats`` timed
calls after a warm-up (the device synchronised around each call).  Printed per case: CPU
and device milliseconds at batch 1, their ratio, the device's batch-8 time and its 8/1
ratio (issue 18's target: a batch of 8 costs at most 3x one image), and the largest
relative difference between the CPU and device outputs (float64 inputs, so a correct
device path agrees to about 1e-12; float32 cases to about 1e-6).

Cases: CT parallel beam (``N`` detectors, 180 views over pi) forward, adjoint and FBP at
``--ct-sizes`` (256 and 512; the ``sparse`` backend on the device: its matrix is built once
per device and not timed), fan beam at the smallest of them; Cartesian ``MultiCoilMRI`` 320
x 320 with 16 coils (``normal``); non-Cartesian radial MRI 256 x 256, 16 coils
(``torchkbnufft`` on the device, the default finufft on the CPU); VLBI visibilities 64 x 64
on the simulated EHT 2017 M87 coverage (exact DFT on the device, the default method on the
CPU); one DAPS level on the built-in ``ct-sparse-view-128`` problem (its learned prior, 4
chains, its default options; the time per level of a short run).

Run on the device machine (see ``benchmarks/device_check.sh``, which runs this with the
tests):  PYTHONPATH=src python benchmarks/device_timings.py [--device cuda] [--repeats 5]
``--device cpu`` checks the script itself where there is no accelerator.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

BATCHES = (1, 8)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def best_ms(fn, device: str, repeats: int) -> float:
    """Minimum wall milliseconds of ``fn()`` over ``repeats`` calls after one warm-up."""
    fn()
    sync(device)
    best = math.inf
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu(), b.detach().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def row(name: str, cpu_call, dev_call, inputs, device: str, repeats: int) -> None:
    """``cpu_call(x)`` / ``dev_call(x)`` for the CPU and device copies of ``inputs[b]``."""
    cpu_ms = best_ms(lambda: cpu_call(inputs[1]), "cpu", repeats)
    dev_in = {b: x.to(device) for b, x in inputs.items()}
    dev_ms = {b: best_ms(lambda b=b: dev_call(dev_in[b]), device, repeats) for b in BATCHES}
    diff = rel_diff(dev_call(dev_in[1]), cpu_call(inputs[1]))
    print(f"| {name} | {cpu_ms:.2f} | {dev_ms[1]:.3f} | {cpu_ms / dev_ms[1]:.1f} | "
          f"{dev_ms[8]:.3f} | {dev_ms[8] / dev_ms[1]:.2f} | {diff:.1e} |", flush=True)


def images(shape, dtype, seed=0) -> dict[int, torch.Tensor]:
    rng = np.random.default_rng(seed)
    out = {}
    for b in BATCHES:
        re = rng.standard_normal((b, *shape))
        x = re + 1j * rng.standard_normal((b, *shape)) if dtype.is_complex else np.abs(re)
        out[b] = torch.from_numpy(x).to(dtype)
    return out


def ct_cases(device: str, repeats: int, sizes) -> None:
    from diffinv.operators.ct import FanBeamRadon, ParallelBeamRadon

    for n in sizes:
        angles = torch.linspace(0, math.pi, 181, dtype=torch.float64)[:-1]
        cpu = ParallelBeamRadon(n, angles, n_detectors=n)
        dev = ParallelBeamRadon(n, angles, n_detectors=n, backend="sparse")
        x = images((1, n, n), torch.float64)
        y = {b: cpu(v) for b, v in x.items()}
        tag = f"CT parallel {n}x{n}/180"
        row(f"{tag} fwd", cpu, dev, x, device, repeats)
        row(f"{tag} adj", cpu.adjoint, dev.adjoint, y, device, repeats)
        row(f"{tag} FBP", cpu.fbp, dev.fbp, y, device, repeats)
    n = min(sizes)
    views = torch.arange(360, dtype=torch.float64) * (2 * math.pi / 360)
    geom = dict(source_origin=2.0 * n, origin_detector=1.0 * n, n_detectors=2 * n,
                detector_spacing=1.0)
    cpu = FanBeamRadon(n, views, **geom)
    dev = FanBeamRadon(n, views, backend="sparse", **geom)
    x = images((1, n, n), torch.float64)
    row(f"CT fan {n}x{n}/360 fwd", cpu, dev, x, device, repeats)
    row(f"CT fan {n}x{n}/360 adj", cpu.adjoint, dev.adjoint,
        {b: cpu(v) for b, v in x.items()}, device, repeats)


def mri_cases(device: str, repeats: int) -> None:
    from diffinv.operators.mri import (
        MultiCoilMRI,
        NonCartesianMRI,
        birdcage_maps,
        cartesian_mask,
        radial_trajectory,
    )

    n, coils = 320, 16
    maps = birdcage_maps((n, n), coils, dtype=torch.complex128)
    mask = cartesian_mask((n, n), 4, 0.08, seed=0)
    cpu = MultiCoilMRI(maps, mask)
    dev = MultiCoilMRI(maps, mask).to(device)
    row(f"MRI Cartesian {n}x{n}, {coils} coils, normal", cpu.normal, dev.normal,
        images((1, n, n), torch.complex128), device, repeats)
    n = 256
    maps = birdcage_maps((n, n), coils, dtype=torch.complex64)
    traj = radial_trajectory(round(n * math.pi / 8), 2 * n, dtype=torch.float32)
    cpu = NonCartesianMRI(maps, traj)
    try:
        dev = NonCartesianMRI(maps, traj, backend="torchkbnufft").to(device)
    except (ImportError, ValueError) as err:
        print(f"| MRI radial {n}x{n}: skipped ({err}) | | | | | | |")
        return
    x = images((1, n, n), torch.complex64)
    row(f"MRI radial {n}x{n}, {coils} coils, adj(fwd) (kb vs finufft)",
        lambda v: cpu.adjoint(cpu(v)), lambda v: dev.adjoint(dev(v)), x, device, repeats)
    row(f"MRI radial {n}x{n}, {coils} coils, Toeplitz normal", cpu.normal, dev.normal, x,
        device, repeats)


def vlbi_cases(device: str, repeats: int) -> None:
    from diffinv.operators.interferometry import Array, Observation, Visibilities

    obs = Observation.simulate(Array.eht2017(), 187.7059, 12.3911, "2017-04-05",
                               integration_s=10.0, scan_interval_s=120.0)
    cpu = Visibilities(obs, 64, 160.0)
    dev = Visibilities(obs, 64, 160.0, method="dft").to(device)
    row(f"VLBI 64x64, {len(obs)} visibilities, adj(fwd) (DFT vs default)",
        lambda v: cpu.adjoint(cpu(v)), lambda v: dev.adjoint(dev(v)),
        images((1, 64, 64), torch.float64), device, repeats)


def daps_level(device: str, levels: int) -> None:
    import diffinv
    from diffinv.demos import get_demo

    for where in ("cpu", device):
        demo = get_demo("ct-sparse-view-128")(seed=0)
        d = demo.solver_defaults
        problem, prior = demo.problem.to(where), demo.prior.to(where)
        kwargs = dict(solver=d["solver"], n_samples=4, seed=0, progress=False,
                      physical_range=demo.metadata.get("physical_range"), **d.get("options", {}))
        diffinv.sample(problem, prior, steps=2, **kwargs)  # warm-up
        sync(where)
        t = time.perf_counter()
        diffinv.sample(problem, prior, steps=levels, **kwargs)
        sync(where)
        per = (time.perf_counter() - t) / levels
        print(f"| one DAPS level, ct-sparse-view-128, 4 chains, on {where} | "
              f"{per * 1e3:.1f} ms | | | | | |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--levels", type=int, default=10, help="DAPS levels timed")
    ap.add_argument("--ct-sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--only", choices=("ct", "mri", "vlbi", "daps"), default=None)
    args = ap.parse_args()
    from diffinv.threads import set_threads

    threads = set_threads(None)
    name = (torch.cuda.get_device_name() if torch.device(args.device).type == "cuda"
            else args.device)
    print(f"# device {name}; CPU threads={threads} (package default), {os.cpu_count()} CPUs; "
          f"torch {torch.__version__}; minimum of {args.repeats} calls; wall ms")
    print("| case | CPU batch 1 ms | device batch 1 ms | CPU / device | device batch 8 ms | "
          "device 8/1 | max rel diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    # CT last: its 512 x 512 sparse matrix takes the longest to build
    cases = {"mri": lambda: mri_cases(args.device, args.repeats),
             "vlbi": lambda: vlbi_cases(args.device, args.repeats),
             "daps": lambda: daps_level(args.device, args.levels),
             "ct": lambda: ct_cases(args.device, args.repeats, args.ct_sizes)}
    for key, run in cases.items():
        if args.only in (None, key):
            run()


if __name__ == "__main__":
    main()
