"""Sampler overhead: time per solver step / time of one denoiser forward+backward.

For every registered solver, runs it on a 64x64 random-projection-free problem (a masked
image, inpainting-style, with Gaussian noise) with a small convolutional denoiser, and
prints the mean wall time of one step divided by the time of one forward+backward pass of
the same denoiser on the same batch, both measured in this run.  A ratio near 1 means the
sampler adds little beyond the network's gradient (the irreducible cost of DPS-type
guidance); solvers that need no gradient can be below 1.

Usage: python benchmarks/sampler_overhead.py [--size 64] [--batch 8] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import diffinv
from diffinv.operators import Diagonal, GaussianNoise, InverseProblem
from diffinv.solvers import available_solvers


class SmallDenoiser(nn.Module):
    """A 4-layer CNN with EDM-style skip scaling, standing in for a diffusion network."""

    def __init__(self, channels: int = 1, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels + 1, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, channels, 3, padding=1),
        )
        self.event_shape = None

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.reshape(-1, 1, 1, 1).to(x.dtype)
        c_skip = 1 / (1 + s**2)
        c_in = 1 / torch.sqrt(1 + s**2)
        c_out = s / torch.sqrt(1 + s**2)
        noise_map = torch.log(s).expand(x.shape[0], 1, *x.shape[2:]) / 4
        return c_skip * x + c_out * self.net(torch.cat([c_in * x, noise_map], 1))


def time_denoiser(net: SmallDenoiser, x: torch.Tensor, repeats: int) -> float:
    sigma = torch.full((x.shape[0],), 1.0)
    best = []
    for _ in range(repeats):
        xg = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        out = net(xg, sigma)
        (g,) = torch.autograd.grad(out.square().sum(), xg)
        best.append(time.perf_counter() - t0)
    best.sort()
    return best[len(best) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    n = args.size
    net = SmallDenoiser()
    net.sigma_max, net.sigma_min = 80.0, 0.002
    mask = (torch.rand(1, n, n) < 0.5).to(torch.float32)
    op = Diagonal(mask)
    x_true = torch.rand(1, 1, n, n)
    noise = GaussianNoise(0.05)
    problem = InverseProblem(op, noise, noise.sample(op(x_true)), image_shape=(1, n, n))
    x = torch.randn(args.batch, 1, n, n)
    time_denoiser(net, x, 3)  # warm-up
    t_net = time_denoiser(net, x, 10)
    print(f"denoiser forward+backward, batch {args.batch}, {n}x{n}: {t_net * 1e3:.2f} ms")
    print(f"{'solver':>10}  {'ms/step':>9}  {'ratio':>6}")
    for name in available_solvers():
        try:
            diffinv.sample(problem, net, name, n_samples=args.batch, steps=2)  # warm-up
            post = diffinv.sample(problem, net, name, n_samples=args.batch, steps=args.steps)
        except (ValueError, NotImplementedError) as err:
            print(f"{name:>10}  skipped: {err}")
            continue
        per_step = post.diagnostics["wall_seconds"] / args.steps
        print(f"{name:>10}  {per_step * 1e3:9.2f}  {per_step / t_net:6.2f}")


if __name__ == "__main__":
    main()
