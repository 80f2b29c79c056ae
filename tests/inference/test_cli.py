"""Command-line tools on SYNTHETIC data: register, evaluate, train_segmentation + segment stage."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch

from inference import io as iio
from inference.evaluate import main as evaluate_main
from inference.register import main as register_main
from inference.segmentation import segment_volume
from inference.train_segmentation import DEFAULTS
from inference.train_segmentation import train as seg_train
from inference.training import config_merge
from tests.inference.synthetic import ball, frames_case
from tests.inference.test_training import write_pairs

torch.set_num_threads(1)


def test_register_cli_writes_outputs(tmp_path):
    """Two images in different frames (SYNTHETIC ellipsoids), registered from the command line."""
    case = frames_case()
    paths = {
        "mr": (case["mr"], case["mr_affine"]),
        "us": (case["us"], case["us_affine"]),
        "mr-label": (case["mr_label"], case["mr_affine"]),
        "us-label": (case["us_label"], case["us_affine"]),
        "mr-landmarks": (case["mr_landmarks"], case["mr_affine"]),
        "us-landmarks": (case["us_landmarks"], case["us_affine"]),
    }
    args = []
    for name, (arr, aff) in paths.items():
        iio.volume_save(tmp_path / f"{name}.nii.gz", arr, aff)
        args += [f"--{name}", str(tmp_path / f"{name}.nii.gz")]
    out = tmp_path / "out"
    assert register_main([*args, "--method", "initial", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "mr_initial.nii.gz",
        "warped_mr.nii.gz",
        "warped_mr_label.nii.gz",
        "displacement.nii.gz",
        "result.json",
        "qc.png",
    } <= names
    shape = case["us"].shape
    doc = json.loads((out / "result.json").read_text())
    assert doc["metrics"]["dsc_initial"] > 0.9 and doc["metrics"]["tre_after_mean"] < 2.0
    assert "reference labels" in doc["metrics_basis"]
    assert np.asarray(doc["world"]).shape == (4, 4)

    assert nib.load(str(out / "displacement.nii.gz")).shape == (*shape, 3)
    assert (out / "qc.png").read_bytes()[:4] == b"\x89PNG"
    # bad input: a clear message, exit code 2, nothing written
    bad_out = tmp_path / "bad"
    assert (
        register_main(
            [
                "--mr",
                str(tmp_path / "nope.nii.gz"),
                "--us",
                str(tmp_path / "us.nii.gz"),
                "--out",
                str(bad_out),
            ]
        )
        == 2
    )
    assert not bad_out.exists()
    # a registration that fails its checks: exit 3, the reason, nothing written
    iio.volume_save(tmp_path / "empty.nii.gz", np.zeros_like(case["us_label"]), case["us_affine"])
    failed = tmp_path / "failed"
    empty_args = [
        a if not a.endswith("us-label.nii.gz") else str(tmp_path / "empty.nii.gz") for a in args
    ]
    assert register_main([*empty_args, "--method", "initial", "--out", str(failed)]) == 3
    assert not failed.exists()


def test_evaluate_table_and_files(tmp_path, capsys):
    write_pairs(tmp_path / "pairs", n=2)
    rc = evaluate_main(
        [
            "--data",
            str(tmp_path / "pairs"),
            "--methods",
            "initial",
            "io",
            "--io-steps",
            "5",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "ev"),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean ± SD DSC" in text and "case000" in text and "initial" in text
    doc = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert {r["method"] for r in doc["rows"]} == {"initial", "io"}
    assert doc["summary"]["initial alignment"]["pairs"] == 2
    assert doc["summary"]["io"]["dsc_n"] == 2 and doc["summary"]["io"]["failed"] == 0
    lines = (tmp_path / "ev" / "results.csv").read_text().splitlines()
    assert lines[0].startswith("case,method,labels,status,model,dsc_initial") and len(lines) == 5
    assert "(n=2)" in text and "against ground truth" in text


def test_segmentation_training_and_segment_stage(tmp_path):
    """Tiny attention U-Net on synthetic balls, then register_case segments missing labels with it."""
    imgs, masks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    shape = (32, 32, 20)
    for i in range(4):
        lab = ball(shape, (16 + rng.integers(-3, 4), 16 + rng.integers(-3, 4), 10), 7)
        img = (lab * 1.0 + 0.2 * rng.random(shape)).astype(np.float32)
        iio.volume_save(imgs / f"c{i}.nii.gz", img, np.eye(4))
        iio.volume_save(masks / f"c{i}.nii.gz", lab, np.eye(4))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    cfg = config_merge(
        DEFAULTS,
        {
            "modality": "mri",
            "model": {"architecture": "AttentionUNet2D", "arch_config": {"channels": [4, 8]}},
            "data": {
                "source": "folder",
                "images": str(imgs),
                "masks": str(masks),
                "val_fraction": 0.25,
            },
            "slice_size": [32, 32],
            "train": {
                "steps": 40,
                "batch_size": 8,
                "lr": 0.01,
                "val_every": 20,
                "device": "cpu",
                "augment": {"rotation_deg": 0.0, "translation": 0.0, "scaling": 0.0},
            },
            "output": {"key": "seg-tiny", "dir": str(ckpt), "work_dir": str(tmp_path / "work")},
        },
    )
    summary = seg_train(cfg, quiet=True)
    assert summary["last_loss"] < summary["first_loss"]
    assert summary["validation"]["slice_dsc"] > 0.5
    img, _ = iio.volume_load(imgs / "c0.nii.gz")
    label, info = segment_volume(
        image=img, modality="mri", checkpoint=str(ckpt / "seg-tiny.pt"), device_name="cpu"
    )
    truth, _ = iio.label_load(masks / "c0.nii.gz")
    assert label.shape == shape and info["name"] == "AttentionUNet2D"
    from inference import metrics as M

    assert M.dice(label, truth) > 0.5
