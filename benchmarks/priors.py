"""Quality bar of the learned priors (shipped ones, or checkpoints given on the command line).

For each prior prints
* held-out denoising PSNR of the prior against a Gaussian filter tuned (oracle) on the same
  noisy images, at sigma = 0.05, 0.2, 0.5, 1.0 times the data range (ratio: gain in dB);
* statistics of unconditional samples (Heun ODE sampler) against fresh training draws:
  pixel mean and std, mean total intensity, mean gradient magnitude, and for black holes the
  ring diameter (from ``diffinv.operators.interferometry.metrics`` if present, else the peak
  of the azimuthally averaged radial profile about the intensity centroid).

With ``--crop-vs-whole`` it instead measures seams/artefacts of a crop-trained prior applied
to whole images: for priors trained on crops of a slice generator, held-out whole slices at
128 and 256 pixels against the same slices denoised tile by tile at the training size; for
grey-level priors, the held-out scikit-image test pictures
(``diffinv.datasets.patches.TEST_IMAGES``, centre crops of 128x128, 256x256 and 172x230)
denoised whole against the same pictures denoised tile by tile.

With ``--real-sizes`` it prints, for every prior, held-out denoising PSNR at 4 noise levels
at each of 32, 128 and 256 pixels where the prior applies (see :func:`held_out_sets`: whole
anatomy slices from held-out seeds at 128 and 256 for crop-trained slice priors, the
held-out pictures for ``natural-patches``, the training size otherwise) against the oracle
Gaussian filter and BM3D (``bm3d``, true sigma; TV if ``bm3d`` is missing).

With ``--throughput`` it measures training throughput (images/s) of ``diffinv train``
launched by ``torchrun`` with 1 and 2 CPU processes (gloo, one thread each) on the same
global batch, from the training log's wall clock (start-up excluded).

Usage: ``PYTHONPATH=src python benchmarks/priors.py [NAME_OR_PATH ...] [--n 64]
[--crop-vs-whole] [--throughput] [--real-sizes [--n-large 4]]``
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from diffinv.priors.checkpoints import list_shipped, load
from diffinv.priors.evaluation import (
    SIGMAS_REL,
    crop_vs_whole_psnr,
    denoising_psnr,
    gaussian_filter_psnr,
    noisy_copy,
    psnr,
)
from diffinv.priors.unconditional import sample_prior

FOV_UAS = 160.0


def radial_ring_diameter(img: torch.Tensor, fov_uas: float = FOV_UAS) -> torch.Tensor:
    """Ring diameter (uas) per image ``(n, 1, H, W)``: 2 x peak radius of the radial profile."""
    x = img[:, 0].clamp(min=0).double()
    n, h, w = x.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    tot = x.sum((1, 2)).clamp(min=1e-12)
    cy = (x * yy).sum((1, 2)) / tot
    cx = (x * xx).sum((1, 2)) / tot
    r = torch.sqrt((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2)
    nbins = h // 2
    idx = r.round().long().clamp(max=nbins - 1)
    prof = torch.zeros(n, nbins, dtype=torch.float64)
    cnt = torch.zeros(n, nbins, dtype=torch.float64)
    prof.scatter_add_(1, idx.reshape(n, -1), x.reshape(n, -1))
    cnt.scatter_add_(1, idx.reshape(n, -1), torch.ones_like(x).reshape(n, -1))
    prof = prof / cnt.clamp(min=1)
    return 2 * prof.argmax(1).double() * fov_uas / w


def ring_diameters(img: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Diameters (uas) with the REx-style ring metrics when available, else our own."""
    try:
        from diffinv.operators.interferometry.metrics import ring_metrics
    except ImportError:
        return radial_ring_diameter(img), "radial-profile peak (ring metrics not installed)"
    d = [ring_metrics(im[0].double(), fov_uas=FOV_UAS).diameter_uas for im in img]
    return torch.tensor(d, dtype=torch.float64), "diffinv ring_metrics (REx)"


def stats(x: torch.Tensor) -> dict[str, float]:
    """Summary statistics; 2-channel (real, imag) images are summarised by their magnitude."""
    x = x.double()
    if x.shape[1] == 2:
        x = x.pow(2).sum(1, keepdim=True).sqrt()
    gy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    gx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return {"pixel mean": float(x.mean()), "pixel std": float(x.std()),
            "total per image": float(x.sum((1, 2, 3)).mean()),
            "mean |gradient|": float(0.5 * (gx + gy))}


def bench(name: str, n: int) -> None:
    prior = load(name)
    print(f"\n== {name}: {prior!r}")
    held = prior.training_samples(n, seed=123_457)
    t0 = time.time()
    ours = denoising_psnr(prior, held, prior.data_range, SIGMAS_REL, seed=9)
    base = gaussian_filter_psnr(held, prior.data_range, SIGMAS_REL, seed=9)
    print(f"denoising PSNR on {n} held-out images ({time.time() - t0:.1f} s)")
    print(f"{'sigma/range':>12} {'prior dB':>9} {'tuned Gauss dB':>15} {'gain dB':>8}")
    ok = True
    for s in SIGMAS_REL:
        ok &= ours[s] > base[s]
        print(f"{s:>12g} {ours[s]:>9.2f} {base[s]:>15.2f} {ours[s] - base[s]:>8.2f}")
    print(f"beats the tuned Gaussian filter at every sigma: {ok}")
    t0 = time.time()
    samples = sample_prior(prior, n, steps=24, generator=torch.Generator().manual_seed(0))
    print(f"unconditional samples: {n} in {time.time() - t0:.1f} s (24 Heun steps)")
    train = prior.training_samples(n, seed=777)
    s_stats, t_stats = stats(samples), stats(train)
    what = " (of the magnitude)" if samples.shape[1] == 2 else ""
    print(f"{'statistic' + what:>18} {'samples':>11} {'training':>11} {'ratio':>7}")
    for k in s_stats:
        ratio = s_stats[k] / t_stats[k] if t_stats[k] != 0 else math.nan
        print(f"{k:>18} {s_stats[k]:>11.4g} {t_stats[k]:>11.4g} {ratio:>7.3f}")
    if prior.dataset == "blackhole":
        ds, how = ring_diameters(samples)
        dt, _ = ring_diameters(train)
        print(f"ring diameter (uas, {how}): samples {float(ds.mean()):.1f} +- "
              f"{float(ds.std()):.1f} (median {float(ds.median()):.1f}), training "
              f"{float(dt.mean()):.1f} +- {float(dt.std()):.1f} (median {float(dt.median()):.1f})")
        rs, _ = ring_diameters(samples) if how.startswith("radial") else (
            radial_ring_diameter(samples), "")
        rt = radial_ring_diameter(train)
        print(f"ring diameter (uas, radial-profile peak): samples {float(rs.mean()):.1f} +- "
              f"{float(rs.std()):.1f}, training {float(rt.mean()):.1f} +- {float(rt.std()):.1f}")


def held_out_pictures(h: int, w: int) -> torch.Tensor:
    """Centre ``h x w`` crops ``(n, 1, h, w)`` of the test pictures at least that large."""
    from diffinv.datasets.patches import TEST_IMAGES, source_image

    out = []
    for name in TEST_IMAGES:
        s = source_image(name)
        if s.shape[0] >= h and s.shape[1] >= w:
            i, j = (s.shape[0] - h) // 2, (s.shape[1] - w) // 2
            out.append(s[i:i + h, j:j + w].float())
    return torch.stack(out)[:, None]


def bm3d_psnr(x: torch.Tensor, data_range, sigmas_rel=SIGMAS_REL, seed: int = 9) -> dict:
    """BM3D (``bm3d`` package, known sigma) PSNR on the same noisy images, else TV
    (scikit-image's Chambolle, weight tuned on a grid: an oracle) when bm3d is missing.
    Each channel (real and imaginary part of complex images) is denoised separately."""
    lo, hi = data_range
    width = float(hi - lo)
    try:
        import bm3d

        name = "BM3D"
    except ImportError:
        from skimage.restoration import denoise_tv_chambolle

        name = "TV (oracle weight)"

    def per_channel(y: torch.Tensor, fn) -> torch.Tensor:
        return torch.stack([torch.stack([torch.from_numpy(fn(ch.numpy())).double()
                                         for ch in im]) for im in y])

    out = {}
    for k, s_rel in enumerate(sigmas_rel):
        y = noisy_copy(x, s_rel * width, seed + k).double()
        if name == "BM3D":
            est = per_channel((y - lo) / width, lambda a, s=s_rel: bm3d.bm3d(a, s)) * width + lo
            out[s_rel] = psnr(est, x, width)
        else:
            out[s_rel] = max(psnr(per_channel(y, lambda a, w=w, s=s_rel: denoise_tv_chambolle(
                a, weight=w * s * width)), x, width) for w in (0.25, 0.5, 1.0, 2.0))
    return {"name": name, **out}


def held_out_sets(prior, n_small: int, n_large: int) -> list[tuple[str, torch.Tensor]]:
    """Held-out test images at the sizes where ``prior`` applies: ``[(label, (n, C, H, W))]``.

    * priors trained on a registered slice generator (``NAME``, or its crops ``NAME-crops``):
      whole ``NAME`` images at 128x128 and 256x256 from held-out seeds (the same images for
      every prior of that generator);
    * ``natural-patches``: centre crops of the held-out scikit-image test pictures at 32,
      128 and 256 pixels;
    * other priors (trained on whole 32x32 images): fresh draws of their generator at their
      training size (held-out seed).
    """
    from diffinv.datasets.registry import get_dataset, list_datasets

    ds = prior.dataset or ""
    slices = ds[: -len("-crops")] if ds.endswith("-crops") else ds
    if slices and f"{slices}-crops" in list_datasets():  # slice generator: crops or whole
        spec = get_dataset(slices)
        return [(f"{s}x{s} whole", spec.sample(n_large, s, torch.Generator().manual_seed(
            900_001 + s))) for s in (128, 256)]
    if ds == "natural-patches":
        lo, hi = prior.data_range
        return [(f"{s}x{s} pictures", lo + (hi - lo) * held_out_pictures(s, s))
                for s in (32, 128, 256)]
    s = prior.image_shape[-1]
    return [(f"{s}x{s}", prior.training_samples(n_small, seed=123_457))]


def bench_real_sizes(names: list[str], n_small: int, n_large: int) -> None:
    """Held-out denoising PSNR of each prior against the oracle Gaussian filter and BM3D at
    every size where it applies (:func:`held_out_sets`); prints one Markdown table."""
    rows = ["| prior | images | sigma | prior | Gaussian filter | BM3D | prior - BM3D |",
            "|---|---|---|---|---|---|---|"]
    for name in names:
        prior = load(name)
        for label, x in held_out_sets(prior, n_small, n_large):
            t0 = time.time()
            ours = denoising_psnr(prior, x, prior.data_range, SIGMAS_REL, seed=9)
            t_prior = time.time() - t0
            gauss = gaussian_filter_psnr(x, prior.data_range, SIGMAS_REL, seed=9)
            t0 = time.time()
            ref = bm3d_psnr(x, prior.data_range, SIGMAS_REL, seed=9)
            print(f"{name} {label} ({x.shape[0]} images): prior {t_prior:.0f} s, "
                  f"{ref['name']} {time.time() - t0:.0f} s", flush=True)
            for k, s in enumerate(SIGMAS_REL):
                head = f"| {name} | {label} ({x.shape[0]}) " if k == 0 else "| | "
                rows.append(f"{head}| {s:g} | {ours[s]:.2f} | {gauss[s]:.2f} | {ref[s]:.2f} | "
                            f"{ours[s] - ref[s]:+.2f} |")
            print("\n".join(rows[-len(SIGMAS_REL):]), flush=True)
    print("\n" + "\n".join(rows))


def bench_crop_vs_whole(name: str, sizes=((32, 32), (128, 128), (256, 256), (172, 230)),
                        references: bool = True) -> None:
    prior = load(name)
    crop = prior.image_shape[-1]
    if (prior.dataset or "").endswith("-crops"):
        bench_slices_crop_vs_whole(name, prior)
        return
    if prior.image_shape[0] != 1:
        print(f"{name}: --crop-vs-whole needs a 1-channel grey-level prior; skipped")
        return
    lo, hi = prior.data_range
    print(f"\n== {name}: held-out scikit-image test pictures (centre crops); PSNR dB of the "
          f"prior on whole images, on {crop}x{crop} tiles (loss = tiles - whole), the best "
          "Gaussian filter (oracle) and BM3D")
    worst = -math.inf
    for h, w in sizes:
        x = lo + (hi - lo) * held_out_pictures(h, w)  # pictures in [0, 1] -> prior's range
        t0 = time.time()
        tiles = min(h, w) >= crop
        r = (crop_vs_whole_psnr(prior, x, prior.data_range, crop, SIGMAS_REL, seed=9)
             if tiles else None)
        whole = denoising_psnr(prior, x, prior.data_range, SIGMAS_REL, seed=9)
        gauss = gaussian_filter_psnr(x, prior.data_range, SIGMAS_REL, seed=9)
        ref = bm3d_psnr(x, prior.data_range, SIGMAS_REL, seed=9) if references else None
        print(f"{h}x{w}, {x.shape[0]} pictures ({time.time() - t0:.0f} s)")
        print(f"{'sigma/range':>12} {'whole':>7} {'tiles':>7} {'loss':>6} {'gauss':>7} "
              f"{(ref or {}).get('name', '-'):>8}")
        for s in SIGMAS_REL:
            tile = r[s]["crop"] if r else math.nan
            loss = tile - whole[s] if r else math.nan
            if r and h * w > crop * crop:
                worst = max(worst, loss)
            print(f"{s:>12g} {whole[s]:>7.2f} {tile:>7.2f} {loss:>+6.2f} {gauss[s]:>7.2f} "
                  f"{ref[s] if ref else math.nan:>8.2f}")
    print(f"largest loss of whole-image inference: {worst:+.2f} dB (bar: 0.5 dB)")


def bench_slices_crop_vs_whole(name: str, prior, n: int = 6) -> None:
    """Whole held-out slices (128, 256) against the same slices denoised as training-size
    tiles, for priors trained on crops of a slice generator."""
    crop = prior.image_shape[-1]
    print(f"\n== {name}: held-out whole slices, PSNR dB whole vs {crop}x{crop} tiles "
          "(loss = tiles - whole)")
    worst = -math.inf
    for label, x in held_out_sets(prior, n, n):
        r = crop_vs_whole_psnr(prior, x, prior.data_range, crop, SIGMAS_REL, seed=9)
        for s in SIGMAS_REL:
            worst = max(worst, r[s]["loss"])
            print(f"| {name} | {label} ({x.shape[0]}) | {s:g} | {r[s]['whole']:.2f} | "
                  f"{r[s]['crop']:.2f} | {r[s]['loss']:+.2f} |", flush=True)
    print(f"largest loss of whole-image inference: {worst:+.2f} dB (bar: 0.5 dB)")


def throughput(nproc: int, steps: int = 30, size: int = 32, batch: int = 32) -> float:
    """Images/s of a torchrun ``diffinv train`` run (disks, default UNet), start-up excluded."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import diffinv

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(diffinv.__file__).parents[1])}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "diffinv.cli", "train", "--dataset", "disks",
               "--image-size", str(size), "--steps", str(steps), "--batch-size", str(batch),
               "--out", tmp, "--log-every", "5", "--checkpoint-every", str(steps),
               "--pool-size", "256", "--eval-images", "8", "--grid-images", "0",
               "--no-progress", "--threads", "1", "--device", "cpu"]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        log = [json.loads(ln) for ln in (Path(tmp) / "training_log.jsonl").read_text()
               .splitlines()]
    first, last = log[0], log[-1]
    return (last["step"] - first["step"]) * batch / (last["wall_s"] - first["wall_s"])


def bench_throughput(repeats: int = 2) -> None:
    print("\n== training throughput, torchrun on CPU (gloo), 1 thread per process, "
          "global batch 32 of 32x32 disks, default UNet")
    best = {1: 0.0, 2: 0.0}
    for _ in range(repeats):  # interleaved, best of repeats
        for n in (1, 2):
            best[n] = max(best[n], throughput(n))
    for n, v in best.items():
        print(f"{n} process(es): {v:.1f} images/s")
    print(f"speed-up 2 vs 1 process: {best[2] / best[1]:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="shipped names or checkpoint paths (default: all)")
    p.add_argument("--n", type=int, default=64, help="held-out images and samples")
    p.add_argument("--crop-vs-whole", action="store_true",
                   help="whole-image vs crop-size denoising PSNR (grey-level priors)")
    p.add_argument("--no-references", action="store_true",
                   help="--crop-vs-whole without the BM3D/TV reference (slow)")
    p.add_argument("--throughput", action="store_true",
                   help="training images/s with 1 and 2 torchrun processes")
    p.add_argument("--real-sizes", action="store_true",
                   help="PSNR vs Gaussian filter and BM3D at 32/128/256 where each prior "
                   "applies (held-out images)")
    p.add_argument("--n-large", type=int, default=4,
                   help="--real-sizes: held-out whole images per size for slice priors")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.throughput:
        bench_throughput()
        return
    names = args.names or [c["name"] for c in list_shipped()]
    if not names:
        print("no shipped priors and no checkpoint given")
    if args.real_sizes:
        bench_real_sizes(names, args.n, args.n_large)
        return
    for name in names:
        if args.crop_vs_whole:
            bench_crop_vs_whole(name, references=not args.no_references)
        else:
            bench(name, args.n)


if __name__ == "__main__":
    main()
