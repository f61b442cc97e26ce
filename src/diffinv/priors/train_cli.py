"""Command-line entry points ``diffinv train`` and ``diffinv priors list``.

The main ``diffinv`` parser (``diffinv.cli``) wires them in with::

    from diffinv.priors import train_cli
    train_cli.add_parsers(subparsers)  # sets args.handler (= args.func) per subcommand

Each ``run_*`` function takes the parsed ``argparse.Namespace`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

__all__ = ["add_parsers", "add_train_parser", "add_priors_parser", "run_train", "run_priors_list",
           "main"]


def add_parsers(subparsers) -> None:
    """Add ``train`` and ``priors`` to an ``argparse`` subparsers object."""
    add_train_parser(subparsers)
    add_priors_parser(subparsers)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "train", help="train a diffusion prior on a synthetic data set or your image files",
        description="Train a UNet denoiser prior (EDM loss) on a registered generator "
        "(--dataset) or on random crops of image files (--data: fastMRI .h5, DICOM, NIfTI, "
        "FITS, .npy/.npz, PNG/TIFF).  Resumes from OUT/checkpoint.pt when present.  Several "
        "processes: torchrun --nproc_per_node=N -m diffinv.cli train ... (one per GPU).")
    p.add_argument("--dataset", default=None, help="data set name (see diffinv.datasets."
                   "registry.list_datasets()); required unless --data is given")
    p.add_argument("--data", nargs="+", default=None, metavar="PATH",
                   help="image files or folders (searched recursively) to train on")
    p.add_argument("--crop", default=None, metavar="HxW",
                   help="crop size for --data, e.g. 64x96 (default: image-size square)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of files/subjects held out for validation (--data)")
    p.add_argument("--val-data", nargs="+", default=None, metavar="PATH",
                   help="explicit validation files or folders (replaces --val-fraction)")
    p.add_argument("--split-by", choices=("file", "subject"), default="file",
                   help="validation split unit; subject = a file's parent folder")
    p.add_argument("--fastmri", choices=("single", "rss", "complex"), default="rss",
                   help="fastMRI images: single-coil magnitude, multi-coil RSS magnitude, or "
                   "coil-combined complex (2 channels)")
    p.add_argument("--units", default="", help="units of the pixel values (model card); "
                   "default: what the files declare")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--image-size", type=int, default=32, help="image side in pixels")
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps in total")
    p.add_argument("--out", required=True, help="output directory (checkpoints, log, prior)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-width", type=int, default=16, help="UNet width at full resolution")
    p.add_argument("--width-mults", default="1,2,4", help="UNet width multipliers per level")
    p.add_argument("--attention-window", type=int, default=0,
                   help="UNet attention in k x k windows of the coarsest grid (0: global); "
                   "keeps attention local when a crop-trained prior runs on whole images")
    p.add_argument("--init", default="", metavar="NAME|PATH",
                   help="fine-tune: start from this shipped prior or prior checkpoint (same "
                   "UNet layers; its normalisation is kept)")
    p.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate "
                   "warm-up")
    p.add_argument("--ema-half-life", type=float, default=300.0, help="EMA half-life in steps")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--pool-size", type=int, default=4096,
                   help="training images generated per pool")
    p.add_argument("--eval-images", type=int, default=256,
                   help="held-out images for the model card's denoising PSNR")
    p.add_argument("--grid-images", type=int, default=16, help="images in samples.png")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if a "
                   "checkpoint exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_train, handler=run_train)
    return p


def add_priors_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``priors`` (with the ``list`` action) to an ``argparse`` subparsers object."""
    p = subparsers.add_parser("priors", help="shipped learned priors")
    sub = p.add_subparsers(dest="priors_command", required=True)
    lst = sub.add_parser("list", help="list the shipped priors and their model cards")
    lst.add_argument("--json", action="store_true", help="print the model cards as JSON")
    lst.set_defaults(func=run_priors_list, handler=run_priors_list)
    return p


def run_train(args: argparse.Namespace) -> int:
    """Run ``diffinv train``; prints where the prior was written."""
    from .training import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        mults = [int(m) for m in str(args.width_mults).split(",")]
    except ValueError:
        raise ValueError(f"--width-mults: expected comma-separated integers, got "
                         f"{args.width_mults!r}") from None
    if not args.data and not args.dataset:
        raise ValueError("--dataset: give a registered data set name or --data PATH...")
    crop = None
    if args.crop:
        try:
            crop = [int(v) for v in str(args.crop).lower().split("x")]
        except ValueError:
            crop = []
        if len(crop) != 2:
            raise ValueError(f"--crop: expected HxW such as 64x96, got {args.crop!r}")
    cfg = TrainConfig(
        dataset=args.dataset or "disks", data=list(args.data or []), crop=crop,
        val_fraction=args.val_fraction, val_data=list(args.val_data or []),
        split_by=args.split_by, fastmri=args.fastmri,
        units=args.units, amp=not args.no_amp, image_size=args.image_size, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, init=args.init,
        warmup=args.warmup,
        ema_half_life=args.ema_half_life, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, pool_size=args.pool_size, eval_images=args.eval_images,
        grid_images=args.grid_images,
        unet={"base_width": args.base_width, "width_mults": mults,
              **({"attention_window": args.attention_window} if args.attention_window else {})},
    )
    prior = train(cfg, args.out, resume=not args.no_resume, device=args.device,
                  progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        psnr = prior.card.get("heldout_denoising_psnr_db", {})
        print(f"prior written to {args.out}/prior.pt; held-out denoising PSNR (dB): {psnr}")
    return 0


def run_priors_list(args: argparse.Namespace) -> int:
    """Run ``diffinv priors list``."""
    from .checkpoints import list_shipped

    cards = list_shipped()
    if getattr(args, "json", False):
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print("no shipped priors")
        return 0
    print(f"{'name':<18}{'shape':<14}{'units':<44}{'steps':>7}  PSNR dB @ sigma 0.05/0.2/0.5/1")
    for c in cards:
        psnr = "/".join(f"{v:.1f}" for v in c.get("heldout_denoising_psnr_db", {}).values())
        shape = "x".join(str(s) for s in c.get("image_shape", []))
        print(f"{c['name']:<18}{shape:<14}{c.get('units', '')[:42]:<44}"
              f"{c.get('steps', ''):>7}  {psnr}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m diffinv.priors.train_cli train ...``)."""
    parser = argparse.ArgumentParser(prog="diffinv")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
