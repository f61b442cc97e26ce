"""Thread counts: time at 1 and 2 threads and with diffinv's default, idle and under load.

For CT (parallel beam: forward, adjoint, FBP), Cartesian multi-coil MRI (forward + adjoint),
non-Cartesian MRI (finufft, forward + adjoint), the interferometry NUFFT (64 x 64, EHT 2017
coverage, forward + adjoint) and one DAPS step (64 x 64 sparse-view CT, small CNN denoiser),
every case is timed with ``diffinv.threads.set_threads(1)``, ``set_threads(2)`` and the
package default (:func:`diffinv.threads.default_threads`, evaluated in each condition), in
two conditions: "idle" (nothing started by this script; on a shared machine other jobs may
run) and "busy" (a second CPU-bound process, ``python -c "while True: pass"``, started by
this script and killed at the end).  The three settings run in turn in every round and the
minimum over rounds is kept; when the default is 1 or 2 threads it *is* that setting, whose
time is reported for it (the ratio is then exactly 1.00 or the 2-thread ratio).  With
``--cli`` the default problem's ``diffinv reconstruct`` run is timed end to end with
``--threads 1``, ``--threads 2`` and without ``--threads`` (the CLI's own choice, which times
one step of the run, :mod:`diffinv.thread_probe`).  Printed
ratios are ``time(setting) / time(1 thread)``: the targets are <= 1.05 for the default
everywhere and <= 0.75 for the large cases when idle.

Run: ``PYTHONPATH=src python benchmarks/threads.py [--rounds 3] [--no-large] [--cli] [--only TEXT]``
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch

from diffinv.threads import default_threads, set_threads, usable_cores

Case = tuple[str, bool, Callable[[], Callable[[], object]]]


def ct_cases(n: int, n_angles: int, large: bool) -> list[Case]:
    from diffinv.operators.ct import ParallelBeamRadon

    def make(kind: str) -> Callable[[], object]:
        op = ParallelBeamRadon(n, n_angles)
        x = torch.rand(1, 1, n, n, generator=torch.Generator().manual_seed(0))
        y = op(x)
        return {"fwd": lambda: op(x), "adj": lambda: op.adjoint(y), "fbp": lambda: op.fbp(y)}[kind]

    tag = f"CT {n}x{n}/{n_angles}"
    return [(f"{tag} {k}", large, lambda k=k: make(k)) for k in ("fwd", "adj", "fbp")]


def mri_cartesian(n: int, coils: int, large: bool) -> Case:
    def make() -> Callable[[], object]:
        from diffinv.operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask

        op = MultiCoilMRI(birdcage_maps((n, n), coils), cartesian_mask((n, n), 4, 0.08, seed=0))
        x = torch.randn(1, 1, n, n, dtype=torch.complex64)
        return lambda: op.adjoint(op(x))

    return (f"MRI cartesian {n}x{n} {coils} coils", large, make)


def mri_radial(n: int, coils: int) -> Case:
    def make() -> Callable[[], object]:
        from diffinv.operators.mri import NonCartesianMRI, birdcage_maps, radial_trajectory

        om = radial_trajectory(int(math.ceil(math.pi / 2 * n)), 2 * n).to(torch.float32)
        op = NonCartesianMRI(birdcage_maps((n, n), coils), om, backend="finufft")
        x = torch.randn(1, 1, n, n, dtype=torch.complex64)
        return lambda: op.adjoint(op(x))

    return (f"MRI radial {n}x{n} {coils} coils", False, make)


def vlbi() -> Case:
    def make() -> Callable[[], object]:
        from diffinv.operators.interferometry import Array, Observation, Visibilities

        obs = Observation.simulate(
            Array.eht2017(),
            187.7059,
            12.3911,
            "2017-04-05",
            integration_s=10.0,
            scan_interval_s=120.0,
        )
        op = Visibilities(obs, 64, 160.0)
        x = torch.rand(1, 1, 64, 64, dtype=torch.float64)
        y = op(x)
        return lambda: (op(x), op.adjoint(y))

    return ("VLBI 64x64 default method fwd+adj", False, make)


def daps_step() -> Case:
    def make() -> Callable[[], object]:
        import diffinv
        from diffinv.operators import GaussianNoise, InverseProblem
        from diffinv.operators.ct import ParallelBeamRadon

        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 1, 3, padding=1),
        )

        def prior(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = sigma.reshape(-1, 1, 1, 1).to(x.dtype)
            return x / (1 + s**2) + s / torch.sqrt(1 + s**2) * net(x / torch.sqrt(1 + s**2))

        op = ParallelBeamRadon(64, 30)
        noise = GaussianNoise(0.1)
        x0 = torch.rand(1, 1, 64, 64)
        problem = InverseProblem(op, noise, noise.sample(op(x0)))

        def step() -> object:
            with torch.no_grad():
                return diffinv.sample(problem, prior, "daps", n_samples=4, steps=1, seed=0)

        return step

    return ("DAPS step 64x64 CT, 4 chains", False, make)


def cli_case() -> Case:
    def make() -> Callable[[], object]:
        out = tempfile.mkdtemp(prefix="diffinv-threads-cli-")

        def run() -> object:
            cmd = [sys.executable, "-m", "diffinv.cli", "reconstruct", "--no-figures"]
            cmd += ["--no-progress", "--overwrite", "--out", out]
            if CLI_THREADS["value"] is not None:  # else the CLI's own default choice
                cmd += ["--threads", str(CLI_THREADS["value"])]
            return subprocess.run(cmd, check=True, capture_output=True)

        return run

    return ("CLI reconstruct, default problem", False, make)


#: The ``--threads`` the CLI case passes; ``None``: none, the CLI chooses (its default).
CLI_THREADS: dict[str, int | None] = {"value": None}


def best_times(fn: Callable[[], object], settings: list[int | None], rounds: int) -> list[float]:
    """Min over ``rounds`` of each thread setting's time, the settings taking turns.

    A setting ``None`` is the package default: :func:`default_threads` in this process and
    no ``--threads`` for the CLI case (which then chooses its count itself).
    """
    best = [math.inf] * len(settings)
    for _ in range(rounds):
        for i, n in enumerate(settings):
            CLI_THREADS["value"] = n
            set_threads(default_threads() if n is None else n)
            fn()  # warm-up at this count (pools resize, plans per thread count)
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def run_condition(name: str, cases: list[Case], rounds: int) -> None:
    default = default_threads()
    settings: list[int | None] = [1, 2] if default in (1, 2) else [1, 2, default]
    print(f"\n## {name}: default_threads() = {default} (usable physical cores {usable_cores()})")
    print(
        f"{'case':40s} {'1 thr [ms]':>11} {'2 thr [ms]':>11} {'default [ms]':>13} "
        f"{'2/1':>6} {'default/1':>10}"
    )
    for label, large, make in cases:
        fn = make()
        # the CLI decides its own count at run time: time it with no --threads as well
        case_settings = [1, 2, None] if label.startswith("CLI") else settings
        times = best_times(fn, case_settings, rounds)
        t1, t2 = times[:2]
        if label.startswith("CLI"):
            td = times[2]
        else:
            td = times[settings.index(default)] if default in settings else times[2]
        mark = " (large)" if large else ""
        print(
            f"{label + mark:40s} {t1 * 1e3:11.1f} {t2 * 1e3:11.1f} {td * 1e3:13.1f} "
            f"{t2 / t1:6.2f} {td / t1:10.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-large", action="store_true", help="skip 512x512 CT, 320x320 MRI")
    parser.add_argument("--cli", action="store_true", help="also time the CLI end to end")
    parser.add_argument("--only", help="run only the cases whose label contains this text")
    args = parser.parse_args()
    cases: list[Case] = ct_cases(128, 90, False)
    cases += [mri_cartesian(256, 8, False), mri_radial(128, 4), vlbi(), daps_step()]
    if not args.no_large:
        cases += ct_cases(512, 360, True) + [mri_cartesian(320, 16, True)]
    if args.cli:
        cases.append(cli_case())
    if args.only:
        cases = [c for c in cases if args.only.lower() in c[0].lower()]
        if not cases:
            parser.error(f"--only: no case label contains {args.only!r}")
    print(f"torch {torch.__version__}; machine: {usable_cores()} physical cores usable")
    run_condition("idle (no process started by this script)", cases, args.rounds)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        run_condition("busy (one CPU-bound process running)", cases, args.rounds)
    finally:
        busy.kill()
        busy.wait()


if __name__ == "__main__":
    main()
