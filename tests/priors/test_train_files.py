"""``diffinv train --data``: training on image files, non-square crops, the model card."""

import json

import numpy as np
import pytest
import torch

from diffinv.cli import main
from diffinv.priors import load_prior
from diffinv.priors.cards import card_markdown


def _args(out, data, *extra):
    return ["train", "--data", *map(str, data), "--crop", "8x12", "--steps", "3", "--out",
            str(out), "--batch-size", "4", "--base-width", "8", "--width-mults", "1,2",
            "--pool-size", "8", "--checkpoint-every", "3", "--log-every", "1",
            "--eval-images", "4", "--grid-images", "0", "--no-progress", *map(str, extra)]


def test_train_on_files_records_normalisation(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "scans"
    for subject in ("a", "b", "c"):
        (data / subject).mkdir(parents=True)
        np.save(data / subject / "vol.npy", (rng.random((3, 20, 17)) * 500 + 100).astype("f4"))
    out = tmp_path / "run"
    assert main(_args(out, [data], "--split-by", "subject", "--val-fraction", "0.34",
                      "--units", "HU")) == 0
    assert "prior written" in capsys.readouterr().out
    card = json.loads((out / "prior.json").read_text())
    assert card["image_shape"] == [1, 8, 12] and card["units"] == "HU"
    assert len(card["train_files"]) == 2 and len(card["validation_files"]) == 1
    lo, hi = card["data_range"]
    assert 100 <= lo < 110 and 590 < hi <= 600
    norm = card["normalisation"]
    assert norm["offset"] == pytest.approx(0.5 * (lo + hi))
    assert norm["scale"] == pytest.approx(0.5 * (hi - lo))
    assert norm["slices_scanned"] == 6 and 300 < norm["pixel_mean"] < 400
    md = card_markdown(card)
    assert "| normalisation |" in md and "| train_files | 2 file(s) |" in md
    prior = load_prior(out / "prior.pt")
    assert prior.dataset is None and prior.units == "HU" and prior.image_shape == (1, 8, 12)
    with torch.no_grad():  # the crop-trained prior takes whole 20x17 images
        assert prior(torch.full((1, 1, 20, 17), 300.0), torch.tensor([10.0])).shape[-2:] == (
            20, 17)


def test_train_on_complex_files_and_bad_data(tmp_path, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / "c").mkdir()
    for k in range(2):
        z = rng.standard_normal((12, 12)) + 1j * rng.standard_normal((12, 12))
        np.save(tmp_path / "c" / f"{k}.npy", z.astype(np.complex64))
    out = tmp_path / "run"
    assert main(_args(out, [tmp_path / "c"], "--val-fraction", "0")) == 0
    card = json.loads((out / "prior.json").read_text())
    assert card["channels"] == 2 and card["data_range"][0] == -card["data_range"][1]
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(_args(tmp_path / "x", [tmp_path / "empty"])) == 2
    assert "empty" in capsys.readouterr().err
    np.save(tmp_path / "c" / "real.npy", np.ones((12, 12)))
    assert main(_args(tmp_path / "y", [tmp_path / "c"], "--val-fraction", "0")) == 2
    assert "mixed channel counts" in capsys.readouterr().err
    assert main(_args(tmp_path / "z", [tmp_path / "c"], "--crop", "8")) == 2
    assert "--crop" in capsys.readouterr().err
    (tmp_path / "c" / "real.npy").unlink()
    assert main(_args(tmp_path / "v", [tmp_path / "c"], "--val-data",
                      tmp_path / "c" / "1.npy")) == 2
    assert "1.npy is also a training file" in capsys.readouterr().err
    (tmp_path / "val").mkdir()
    (tmp_path / "c" / "1.npy").rename(tmp_path / "val" / "1.npy")
    assert main(_args(tmp_path / "w", [tmp_path / "c"], "--val-data", tmp_path / "val")) == 0
    card = json.loads((tmp_path / "w" / "prior.json").read_text())
    assert card["validation_files"] == [str(tmp_path / "val" / "1.npy")]
    assert card["split_by"].startswith("explicit")
