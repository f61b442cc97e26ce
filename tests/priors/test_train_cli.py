"""``diffinv train`` and ``diffinv priors list`` through the package's CLI."""

import json

import torch

from diffinv.cli import main


def test_train_command_writes_prior_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "disks", "--image-size", "8", "--steps", "4", "--out",
            str(out), "--batch-size", "4", "--base-width", "8", "--width-mults", "1,2",
            "--pool-size", "16", "--checkpoint-every", "2", "--log-every", "2",
            "--eval-images", "4", "--grid-images", "4", "--no-progress"]
    assert main(argv) == 0
    assert "prior written" in capsys.readouterr().out
    for name in ("checkpoint.pt", "training_log.jsonl", "prior.pt", "prior.json", "samples.png"):
        assert (out / name).is_file(), name
    card = json.loads((out / "prior.json").read_text())
    assert card["steps"] == 4 and card["image_shape"] == [1, 8, 8]
    # continuing to more steps resumes from the checkpoint
    assert main([a if a != "4" else "6" for a in argv[:7]] + argv[7:]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 6


def test_train_command_rejects_unknown_dataset(tmp_path, capsys):
    code = main(["train", "--dataset", "nope", "--out", str(tmp_path / "x"), "--steps", "1"])
    assert code == 2
    assert "dataset" in capsys.readouterr().err


def test_priors_list(capsys):
    assert main(["priors", "list"]) == 0
    text = capsys.readouterr().out
    assert "name" in text or "no shipped priors" in text
    assert main(["priors", "list", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert isinstance(cards, list)
