"""Train an attention U-Net gland segmenter for one modality (MRI or TRUS).

    python -m inference.train_segmentation --config inference/configs/seg_mri_sim.yaml [--resume]
    python -m inference.train_segmentation --config inference/configs/seg_mri_promise12.yaml [--cv 5]

Data (``data.source``): ``promise12`` (REAL T2: PROMISE12 training cases + Yale subject 1 on the
canonical millimetre grid, with cross-validation by case; :mod:`inference.seg_train_real`,
:mod:`inference.seg_cv`), ``simulated`` (MR or TRUS volumes of :mod:`inference.simulate` pairs, labelled
synthetic), ``folder`` (NIfTI image + mask folders, MSD/PROMISE12 style: ``data.images``,
``data.masks``) or ``deepreg`` (a paired folder: moving = MRI, fixed = TRUS). Volumes are cut into
slices with the paper's preprocessing (:func:`inference.segmentation.slices_prepare`); augmentation is
a random in-plane rotation/translation/scaling. Seeded, resumable, tqdm progress, CUDA when present; the
result is a self-describing checkpoint registered as the default ``seg_<modality>``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from inference import metrics as M
from inference.data import deepreg_pairs, segmentation_folder, simulated_pairs
from inference.losses import segmentation_loss
from inference.models import model_build
from inference.segmentation import MODALITY_SETTINGS, slices_prepare
from inference.training import (
    LoopState,
    checkpoint_ship,
    cli_parser,
    config_read,
    loop_run,
    state_resume,
    summary_make,
    summary_print,
    train_setup,
)

__all__ = ["DEFAULTS", "main", "train"]

DEFAULTS: dict[str, Any] = {
    "modality": "mri",
    "model": {"architecture": "AttentionUNet2D", "arch_config": {"channels": [8, 16, 32, 64]}},
    "data": {
        "source": "simulated",
        "train_seeds": [0, 16],
        "val_seeds": [1000, 1003],
        "simulate_source": None,
        "images": None,
        "masks": None,
        "folder": None,
        "val_fraction": 0.2,
    },
    "slice_size": None,
    # the real-T2 path (data.source: promise12) only; see inference/configs/seg_mri_promise12.yaml
    "preprocessing": {
        "spacing_mm": 1.25,
        "size": [96, 96],
        "train_drop": [0.1, 0.1],
        "infer_drop": [0.0, 0.0],
        "percentiles": [1.0, 99.0],
        "enhance": [],
        "tta_flip": True,
        "threshold": 0.5,
    },
    "cv": {"folds": 5, "steps": 800, "out": "var/seg-cv/seg-mri", "low_confidence": 0.85},
    "train": {
        "steps": 300,
        "batch_size": 8,
        "lr": 1e-3,
        "augment": {"rotation_deg": 10.0, "translation": 0.05, "scaling": 0.1},
        "val_every": 50,
        "seed": 0,
        "num_threads": None,
        "device": "auto",
    },
    "output": {
        "key": "seg-mri-sim",
        "dir": None,
        "work_dir": "var/train/seg-mri",
        "register": True,
    },
}


def config_load(path: str | Path) -> dict[str, Any]:
    """YAML config over :data:`DEFAULTS`; unknown top-level keys are an error."""
    p = Path(path)
    cfg = config_read(p, DEFAULTS)
    if cfg["modality"] not in MODALITY_SETTINGS:
        raise ValueError(f"{p}: modality must be one of {sorted(MODALITY_SETTINGS)}")
    if cfg["data"]["source"] == "promise12" and cfg["modality"] != "mri":
        raise ValueError(f"{p}: data.source promise12 is MRI; set modality: mri")
    return cfg


def _volumes(cfg: dict[str, Any], split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    data, modality = cfg["data"], cfg["modality"]
    if data["source"] == "simulated":
        lo, hi = data["train_seeds" if split == "train" else "val_seeds"]
        out = []
        for p in simulated_pairs(range(lo, hi), source=data.get("simulate_source")):
            if modality == "mri":
                out.append((p.name, p.mr, p.mr_label))
            else:
                out.append((p.name, p.us, p.us_label))
        return [(n, v, m) for n, v, m in out if m is not None]
    if data["source"] == "folder":
        vols = list(segmentation_folder(data["images"], data["masks"]))
    elif data["source"] == "deepreg":
        vols = []
        for p in deepreg_pairs(data["folder"]):
            img, lab = (p.mr, p.mr_label) if modality == "mri" else (p.us, p.us_label)
            if lab is not None:
                vols.append((p.name, img, lab))
    else:
        raise ValueError(
            f"data.source must be simulated, folder or deepreg, got {data['source']!r}"
        )
    if len(vols) < 2:
        raise ValueError(f"need at least 2 volumes to split train/val, found {len(vols)}")
    n_val = max(1, int(round(len(vols) * float(data["val_fraction"]))))
    return vols[n_val:] if split == "train" else vols[:n_val]


def _slices(
    vols: list[tuple[str, np.ndarray, np.ndarray]], modality: str, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for _, img, lab in vols:
        x, _, _ = slices_prepare(img, modality, size=size)
        # labels go through the same crop/resize as the image (then thresholded)
        y, _, _ = slices_prepare(lab.astype(np.float32), modality, size=size)
        xs.append(x)
        ys.append((y > 0.5).astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def _augment(
    x: torch.Tensor, y: torch.Tensor, aug: dict[str, float], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    b = x.shape[0]
    ang = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(aug["rotation_deg"])
    sc = 1 + (torch.rand(b, generator=gen) * 2 - 1) * aug["scaling"]
    sh = (torch.rand(b, 2, generator=gen) * 2 - 1) * aug["translation"] * 2
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.cos(ang) * sc
    theta[:, 0, 1] = -torch.sin(ang) * sc
    theta[:, 1, 0] = torch.sin(ang) * sc
    theta[:, 1, 1] = torch.cos(ang) * sc
    theta[:, :, 2] = sh
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    xa = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
    ya = (F.grid_sample(y, grid, align_corners=False, mode="nearest") > 0.5).float()
    return xa, ya


def _val_dice(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device) -> float:
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), 16):
            preds.append((model(torch.from_numpy(x[i : i + 16]).to(device)) > 0).cpu().numpy())
    model.train()
    return M.dice(np.concatenate(preds), y > 0.5)


def _slices_cached(
    cfg: dict[str, Any], work: Path, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation slices and masks, from ``work``'s cache when it is there."""
    cache = work / f"slices_{size[0]}x{size[1]}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return z["xt"], z["yt"], z["xv"], z["yv"]
    modality = cfg["modality"]
    xt, yt = _slices(_volumes(cfg, "train"), modality, size)
    xv, yv = _slices(_volumes(cfg, "val"), modality, size)
    tmp = work / "slices.tmp.npz"
    np.savez_compressed(tmp, xt=xt, yt=yt, xv=xv, yv=yv)
    tmp.replace(cache)
    return xt, yt, xv, yv


def _training_data(cfg: dict[str, Any], n_train: int, n_val: int) -> dict[str, Any]:
    data, modality = cfg["data"], cfg["modality"]
    synthetic = data["source"] == "simulated"
    return {
        "synthetic": synthetic,
        "source": data["source"],
        "modality": modality,
        "description": (
            f"SIMULATED {modality.upper()} volumes from inference.simulate "
            f"({'Yale T2 anatomy' if data.get('simulate_source') else 'parametric phantoms'}), seeds {data['train_seeds']}"
            if synthetic
            else f"{data['source']} {data.get('images') or data.get('folder')}"
        ),
        "n_train_slices": n_train,
        "n_val_slices": n_val,
    }


def train(cfg: dict[str, Any], *, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Train from a merged config; returns a summary (losses, validation DSC, checkpoint path)."""
    tr = cfg["train"]
    if cfg["data"]["source"] == "promise12":
        from inference.seg_cv import train_ship

        if tr.get("num_threads"):
            torch.set_num_threads(int(tr["num_threads"]))
        return train_ship(cfg, resume=resume, log=(lambda m: None) if quiet else print)
    seed, device = train_setup(tr)
    modality = cfg["modality"]
    size = tuple(cfg["slice_size"] or MODALITY_SETTINGS[modality]["size"])
    size2 = (int(size[0]), int(size[1]))
    work = Path(cfg["output"]["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    xt, yt, xv, yv = _slices_cached(cfg, work, size2)
    arch = cfg["model"]["architecture"]
    model = model_build(arch, dict(cfg["model"].get("arch_config") or {})).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=float(tr["lr"]))
    gen = torch.Generator().manual_seed(seed)
    state_path = work / f"{cfg['output']['key']}_state.pt"
    state = LoopState()
    if resume and state_path.exists():
        st = state_resume(state_path, model=model, opt=opt, gen=gen, device=device)
        state.step, state.history = int(st["step"]), list(st["history"])
    bs = min(int(tr["batch_size"]), len(xt))

    def step_loss() -> torch.Tensor:
        idx = torch.randint(0, len(xt), (bs,), generator=gen).numpy()
        x = torch.from_numpy(xt[idx]).to(device)
        y = torch.from_numpy(yt[idx]).to(device)
        x, y = _augment(x, y, tr["augment"], gen)
        return segmentation_loss(model(x), y)

    started = time.perf_counter()
    loop_run(
        model=model,
        opt=opt,
        gen=gen,
        state=state,
        steps=int(tr["steps"]),
        val_every=int(tr["val_every"]),
        state_path=state_path,
        step_loss=step_loss,
        validate=lambda: {"val_dsc": _val_dice(model, xv, yv, device)},
        desc=f"train seg {modality}",
        quiet=quiet,
    )
    val = {"slice_dsc": _val_dice(model, xv, yv, device)}
    path = checkpoint_ship(
        cfg,
        model=model,
        kind=f"seg_{modality}",
        training_data=_training_data(cfg, int(len(xt)), int(len(xv))),
        validation=val,
        input_shape=list(size2),
        extra={"history": state.history, "steps": state.step, "modality": modality},
    )
    return summary_make(path=path, validation=val, state=state, started=started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser(
        "Train an attention U-Net gland segmenter.",
        steps_help="training steps (per fold with --cv)",
    )
    parser.add_argument(
        "--cv", type=int, metavar="K", help="K-fold cross-validation by case (promise12 only)"
    )
    parser.add_argument(
        "--fold", type=int, action="append", help="with --cv: run only this fold (repeatable)"
    )
    args = parser.parse_args(argv)
    try:
        cfg = config_load(args.config)
        if args.cv is not None and cfg["data"]["source"] != "promise12":
            raise ValueError("--cv needs data.source: promise12")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cv is not None:
        from inference.seg_cv import cross_validate

        if cfg["train"].get("num_threads"):
            torch.set_num_threads(int(cfg["train"]["num_threads"]))
        res = cross_validate(
            cfg, folds=args.cv, only=args.fold, steps=args.steps, resume=args.resume
        )
        return 0 if res["complete"] or args.fold else 1
    if args.steps is not None:
        cfg["train"]["steps"] = args.steps
    summary_print(train(cfg, resume=args.resume))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
