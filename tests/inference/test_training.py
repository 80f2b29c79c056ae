"""A short weakly-supervised training run on SYNTHETIC sphere pairs lowers the loss; resume works."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inference import io as iio
from inference.data import deepreg_pairs, pair_prepare
from inference.registry import checkpoint_resolve, registry_load
from inference.train_registration import DEFAULTS, config_load, train
from inference.training import config_merge
from tests.inference.synthetic import ball

torch.set_num_threads(1)
SHAPE = (20, 20, 20)


def write_pairs(root, n=4):
    """DeepReg paired layout; the moving gland carries a bump that no affine alignment removes."""
    for d in ("moving_images", "fixed_images", "moving_labels", "fixed_labels"):
        (root / d).mkdir(parents=True)
    aff = np.eye(4)
    for i in range(n):
        fixed = ball(SHAPE, (10, 10, 10), 5)
        axis = i % 3
        c = [10.0, 10.0, 10.0]
        c[axis] += 5
        moving = np.maximum(ball(SHAPE, (10, 10, 10), 5), ball(SHAPE, tuple(c), 3))
        lab_f = np.stack([fixed, ball(SHAPE, (10, 10, 13), 1.5)], axis=-1)
        lab_m = np.stack([moving, ball(SHAPE, (10, 10, 13), 1.5)], axis=-1)
        name = f"case{i:03d}.nii.gz"
        iio.volume_save(root / "fixed_images" / name, fixed * 200.0 + 20, aff)
        iio.volume_save(root / "moving_images" / name, moving * 150.0 + 40, aff)
        iio.volume_save(root / "fixed_labels" / name, lab_f.astype(np.float32), aff)
        iio.volume_save(root / "moving_labels" / name, lab_m.astype(np.float32), aff)


def tiny_config(tmp_path, steps):
    return config_merge(
        DEFAULTS,
        {
            "model": {
                "architecture": "RERN",
                "kind": "rern",
                "arch_config": {"channels": [4, 8, 16]},
            },
            "data": {"source": "deepreg", "folder": str(tmp_path / "pairs")},
            "input_shape": [16, 16, 16],
            "train": {
                "steps": steps,
                "batch_size": 2,
                "lr": 0.01,
                "bending_weight": 0.05,
                "augment": {"rotation_deg": 0.0, "translation": 0.0, "scaling": 0.0},
                "val_every": 10,
                "seed": 0,
                "device": "cpu",
            },
            "output": {
                "key": "tiny",
                "dir": str(tmp_path / "ckpt"),
                "work_dir": str(tmp_path / "work"),
            },
        },
    )


def test_deepreg_loader_and_prepare(tmp_path):
    write_pairs(tmp_path / "pairs", n=2)
    pairs = list(deepreg_pairs(tmp_path / "pairs"))
    assert [p.name for p in pairs] == ["case000", "case001"]
    assert pairs[0].mr_landmarks is not None and pairs[0].mr_landmarks.max() == 1
    prep = pair_prepare(pairs[0], shape=(16, 16, 16))
    assert (
        prep.moving.shape == (16, 16, 16) and prep.moving.min() >= 0.0 and prep.moving.max() <= 1.0
    )
    assert set(prep.fixed_points) == {1}


def test_short_training_lowers_loss_and_resumes(tmp_path):
    write_pairs(tmp_path / "pairs")
    (tmp_path / "ckpt").mkdir()
    first = train(tiny_config(tmp_path, 20), quiet=True)
    hist = first["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["dsc_after"] > hist[-1]["dsc_before"]
    info = checkpoint_resolve(kind="rern", directory=tmp_path / "ckpt")
    assert info.key == "tiny"
    entry = registry_load(tmp_path / "ckpt")["checkpoints"]["tiny"]
    assert entry["synthetic"] is False and entry["sha256"] == info.sha256
    payload = torch.load(info.path, weights_only=True)
    assert payload["input_shape"] == [16, 16, 16] and payload["code_version"]
    # resume continues from the saved step instead of starting again
    again = train(tiny_config(tmp_path, 30), resume=True, quiet=True)
    assert again["history"][0]["step"] == 10 and again["history"][-1]["step"] == 30


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"modle": {}}))
    with pytest.raises(ValueError, match="unknown keys"):
        config_load(bad)
    with pytest.raises(FileNotFoundError):
        config_load(tmp_path / "missing.yaml")
