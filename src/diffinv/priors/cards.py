"""Model cards of learned priors (JSON + Markdown) and export of a trained prior for shipping."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import atomic_write
from .checkpoints import load_prior, save_prior

__all__ = ["card_markdown", "export_prior"]


def card_markdown(card: dict) -> str:
    """Render a model card dictionary as Markdown."""
    psnr = card.get("heldout_denoising_psnr_db", {})
    lines = [
        f"# Prior `{card.get('name', '?')}`",
        "",
        card.get("description", ""),
        "",
        "| field | value |",
        "|---|---|",
    ]
    for key in ("dataset", "generator", "generator_version", "units", "units_note",
                "data_range", "normalisation", "image_shape", "size_agnostic", "crop",
                "meant_for", "limits", "split_by", "steps", "batch_size", "processes", "seed",
                "parameters", "training", "training_command", "training_wall_time",
                "diffinv_version", "licence"):
        if card.get(key) is not None:
            lines.append(f"| {key} | {card[key]} |")
    for key in ("train_files", "validation_files"):
        if card.get(key):
            lines.append(f"| {key} | {len(card[key])} file(s) |")
    lines += ["", "Held-out denoising PSNR (dB); " + card.get("psnr_convention", ""), "",
              "| sigma / range | " + " | ".join(psnr) + " |",
              "|---|" + "---|" * len(psnr),
              "| PSNR dB | " + " | ".join(f"{v}" for v in psnr.values()) + " |", ""]
    usage = (f"```python\nimport diffinv.priors\nprior = diffinv.priors.load("
             f"{card.get('name', 'NAME')!r})\nprior.image_shape, prior.data_range, prior.units"
             "\n```\n")
    return "\n".join(lines) + "\n" + usage


def export_prior(run_dir: str | os.PathLike, name: str, dest_dir: str | os.PathLike,
                 **card_fields) -> Path:
    """Copy a trained ``run_dir/prior.pt`` to ``dest_dir/NAME.pt`` with ``NAME.json``/``.md``.

    ``card_fields`` are added to the model card (e.g. ``generator_version``).
    """
    prior = load_prior(Path(run_dir) / "prior.pt")
    prior.card = {**prior.card, "name": name, **card_fields}
    dest = Path(dest_dir)
    out = save_prior(prior, dest / f"{name}.pt")
    text = json.dumps(prior.card, indent=2) + "\n"
    atomic_write(dest / f"{name}.json", lambda tmp: Path(tmp).write_text(text))
    md = card_markdown(prior.card)
    atomic_write(dest / f"{name}.md", lambda tmp: Path(tmp).write_text(md))
    return out
