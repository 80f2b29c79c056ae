"""Train RERN (or the LocalNet baseline) with weak supervision on gland labels.

    python -m inference.train_registration --config inference/configs/rern_sim.yaml [--resume]

Data (``data.source``): ``simulated`` (pairs from :mod:`inference.simulate`, labelled synthetic),
``simulated_perturbed`` (the same on real glands, misaligned as segmented labels leave them:
:mod:`inference.reg_train_data`) or ``deepreg`` (a µ-RegPro/DeepReg paired folder). Every pair is
prepared as the pipeline prepares it (resample MR onto TRUS, initial alignment, normalise, resize to
``input_shape``) and cached in
``output.work_dir``. Training is seeded, shows a tqdm bar, saves a resumable state every
``train.val_every`` steps, uses CUDA when present, and finally writes a self-describing checkpoint and
registers it as the default of its kind in ``inference/checkpoints/registry.json``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.blocks import Warp
from tqdm import tqdm

from inference import metrics as M
from inference.data import PreparedPair, RawPair, deepreg_pairs, pair_prepare, simulated_pairs
from inference.losses import WeakSupervisionLoss
from inference.models import model_build
from inference.reg_train_data import (
    displacement_augment,
    pair_resize,
    pairs_load,
    pairs_save,
    perturbed_describe,
    perturbed_pairs,
)
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

__all__ = ["config_load", "main", "train"]

DEFAULTS: dict[str, Any] = {
    "model": {"architecture": "RERN", "kind": "rern", "arch_config": {}},
    "data": {
        "source": "simulated",
        "train_seeds": [0, 32],
        "val_seeds": [1000, 1004],
        "simulate_source": None,
        "folder": None,
        "val_folder": None,
        "geometry": "resize",
    },
    "input_shape": [40, 64, 48],
    "train": {
        "steps": 600,
        "batch_size": 2,
        "lr": 1e-3,
        "bending_weight": 1.0,
        "augment": {"rotation_deg": 5.0, "translation": 0.05, "scaling": 0.05},
        "val_every": 100,
        "seed": 0,
        "num_threads": None,
    },
    "output": {"key": "rern-sim", "dir": None, "work_dir": "var/train/rern", "register": True},
}


def config_load(path: str | Path) -> dict[str, Any]:
    """Read a YAML config over :data:`DEFAULTS`; unknown top-level keys are an error."""
    return config_read(path, DEFAULTS)


def _seeds(spec: Sequence[int]) -> list[int]:
    if len(spec) != 2 or spec[1] <= spec[0]:
        raise ValueError(f"seed ranges are [start, stop) with stop > start, got {list(spec)}")
    return list(range(int(spec[0]), int(spec[1])))


def _cache_path(work: Path, split: str) -> Path:
    return work / f"{split}_pairs.npz"


def _pairs_build(cfg: dict[str, Any], split: str, work: Path) -> list[PreparedPair]:
    """Prepare (or load from the work-dir cache) the pairs of a split."""
    cache = _cache_path(work, split)
    shape = cfg["input_shape"]
    if cache.exists():
        return [pair_resize(p, shape) for p in pairs_load(cache)]
    data = cfg["data"]
    seeds = data["train_seeds" if split == "train" else "val_seeds"]
    if data["source"] == "simulated_perturbed":  # inference-like misalignment: reg_train_data
        pairs = perturbed_pairs(
            data,
            _seeds(seeds),
            split,
            shape,
            workers=int(data.get("workers") or 1),
            progress=lambda it, n: tqdm(it, total=n, desc=f"prepare {split}", leave=False),
        )
    else:
        pairs = [
            pair_prepare(p, shape=shape)
            for p in tqdm(list(_raw_pairs(data, split, seeds)), desc=f"prep {split}", leave=False)
        ]
    if not pairs:
        raise ValueError(f"no {split} pairs found for {data}")
    pairs_save(cache, pairs)
    return pairs


def _raw_pairs(data: dict[str, Any], split: str, seeds: Sequence[int]) -> Iterator[RawPair]:
    if data["source"] == "simulated":
        return simulated_pairs(_seeds(seeds), source=data.get("simulate_source"))
    if data["source"] == "deepreg":
        folder = data["folder"] if split == "train" else (data.get("val_folder") or data["folder"])
        if not folder:
            raise ValueError("data.folder is required for source 'deepreg'")
        return deepreg_pairs(folder, geometry=data.get("geometry", "resize"))
    raise ValueError(
        f"data.source must be simulated[_perturbed] or deepreg, got {data['source']!r}"
    )


def _batch(
    pairs: list[PreparedPair], idx: Sequence[int], device: torch.device
) -> dict[str, torch.Tensor]:
    def stack(attr: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(pairs[i], attr) for i in idx])[:, None]).to(
            device
        )

    out = {a: stack(a) for a in ("moving", "fixed", "moving_label", "fixed_label")}
    disp = [getattr(pairs[i], "displacement", None) for i in idx]
    if all(d is not None for d in disp):  # the simulated pairs' true residual field
        out["displacement"] = torch.from_numpy(np.stack(disp)).to(device)  # type: ignore[arg-type]
    return out


def _augment(
    batch: dict[str, torch.Tensor], aug: dict[str, float], gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """Random rotation/translation/scaling of the moving image and label (the paper's augmentation)."""
    b = batch["moving"].shape[0]
    device = batch["moving"].device
    thetas = []
    for _ in range(b):
        ang = (torch.rand(3, generator=gen) * 2 - 1) * math.radians(aug["rotation_deg"])
        c, s = torch.cos(ang), torch.sin(ang)
        rx = torch.tensor([[1, 0, 0], [0, c[0], -s[0]], [0, s[0], c[0]]])
        ry = torch.tensor([[c[1], 0, s[1]], [0, 1, 0], [-s[1], 0, c[1]]])
        rz = torch.tensor([[c[2], -s[2], 0], [s[2], c[2], 0], [0, 0, 1]])
        scale = torch.diag(1 + (torch.rand(3, generator=gen) * 2 - 1) * aug["scaling"])
        shift = (torch.rand(3, generator=gen) * 2 - 1) * aug["translation"] * 2
        thetas.append(torch.cat([rz @ ry @ rx @ scale, shift[:, None]], dim=1))
    theta = torch.stack(thetas).to(device=device, dtype=torch.float32)
    grid = F.affine_grid(theta, list(batch["moving"].shape), align_corners=True)
    out = dict(batch)
    out["moving"] = F.grid_sample(batch["moving"], grid, align_corners=True, padding_mode="border")
    out["moving_label"] = F.grid_sample(
        batch["moving_label"], grid, align_corners=True, padding_mode="zeros"
    )
    if "displacement" in batch:
        out["displacement"] = displacement_augment(batch["displacement"], theta)
    return out


def _validate(
    model: torch.nn.Module, pairs: list[PreparedPair], device: torch.device
) -> dict[str, float]:
    """Mean DSC before/after, TRE before/after (mm) and folding on the validation pairs."""
    model.eval()
    warp = Warp(mode="bilinear", padding_mode="border")
    rows: dict[str, list[float]] = {
        k: [] for k in ("dsc_before", "dsc_after", "tre_before", "tre_after", "folding")
    }
    with torch.no_grad():
        for i in range(len(pairs)):
            b = _batch(pairs, [i], device)
            ddf = model(torch.cat([b["moving"], b["fixed"]], dim=1))
            warped = warp(b["moving_label"], ddf)[0, 0].cpu().numpy() > 0.5
            fixed = pairs[i].fixed_label > 0.5
            u = ddf[0].cpu().numpy()
            rows["dsc_before"].append(M.dice(pairs[i].moving_label > 0.5, fixed))
            rows["dsc_after"].append(M.dice(warped, fixed))
            rows["folding"].append(M.folding_fraction(u))
            if pairs[i].fixed_points:
                sp = pairs[i].spacing
                rows["tre_before"].append(
                    M.tre_points(pairs[i].fixed_points, pairs[i].moving_points, None, sp)[
                        "tre_mean"
                    ]
                )
                rows["tre_after"].append(
                    M.tre_points(pairs[i].fixed_points, pairs[i].moving_points, u, sp)["tre_mean"]
                )
    model.train()
    return {k: float(np.mean(v)) for k, v in rows.items() if v}


def _training_data(cfg: dict[str, Any], n_train: int, n_val: int) -> dict[str, Any]:
    data = cfg["data"]
    return {
        "synthetic": str(data["source"]).startswith("simulated"),
        "source": data["source"],
        "description": (
            perturbed_describe(data)
            if data["source"] == "simulated_perturbed"
            else "SIMULATED MR/TRUS pairs from inference.simulate "
            f"({'Yale T2 anatomy' if data.get('simulate_source') else 'parametric phantoms'}), "
            f"seeds {data['train_seeds']}; validation seeds {data['val_seeds']}"
            if data["source"] == "simulated"
            else f"DeepReg paired folder {data['folder']}"
        ),
        "n_train": n_train,
        "n_val": n_val,
    }


def _step_loss(
    tr: dict[str, Any],
    *,
    model: torch.nn.Module,
    loss_fn: WeakSupervisionLoss,
    pairs: list[PreparedPair],
    gen: torch.Generator,
    device: torch.device,
) -> Callable[[], torch.Tensor]:
    """One training step's loss: a random batch (augmented), the network's field, the weak
    supervision loss (plus the true field's MSE on simulated pairs with ``displacement_weight``)."""
    bs = min(int(tr["batch_size"]), len(pairs))
    fmt = torch.channels_last_3d if tr.get("channels_last") else torch.contiguous_format

    def step_loss() -> torch.Tensor:
        idx = torch.randperm(len(pairs), generator=gen)[:bs].tolist()
        batch = _augment(_batch(pairs, idx, device), tr["augment"], gen)
        x = torch.cat([batch["moving"], batch["fixed"]], dim=1)
        ddf = model(x.contiguous(memory_format=fmt))
        out = loss_fn(ddf, batch["moving_label"], batch["fixed_label"])
        if tr.get("displacement_weight") and "displacement" in batch:  # simulated pairs' truth
            out["loss"] = out["loss"] + float(tr["displacement_weight"]) * F.mse_loss(
                ddf, batch["displacement"].to(ddf.device)
            )
        loss: torch.Tensor = out["loss"]
        return loss

    return step_loss


def _best_initial(model: torch.nn.Module, step: int, score: float) -> dict[str, Any]:
    """The best-state record of the model as it is (before this run's steps)."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"step": step, "score": score, "model": weights}


def train(cfg: dict[str, Any], *, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Run training from a merged config; returns a summary dict (losses, validation, paths)."""
    t0 = time.perf_counter()  # train.max_seconds counts the data preparation too
    tr = cfg["train"]
    seed, device = train_setup(tr)
    work = Path(cfg["output"]["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    train_pairs = _pairs_build(cfg, "train", work)
    val_pairs = _pairs_build(cfg, "val", work)
    arch = cfg["model"]["architecture"]
    model = model_build(arch, dict(cfg["model"].get("arch_config") or {})).to(device)
    if tr.get("channels_last"):  # ~30% faster 3-D convolutions on CPU (oneDNN)
        model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    opt = torch.optim.Adam(model.parameters(), lr=float(tr["lr"]))
    cosine = tr.get("lr_schedule") == "cosine"  # decay to 0 over train.steps: a stable last model
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(tr["steps"])) if cosine else None
    keep = tr.get("keep_best")  # "tre_after" | "dsc_after": ship the best validated state

    def score(v: dict[str, float]) -> float:
        return -v["tre_after"] if keep == "tre_after" else v["dsc_after"]

    loss_fn = WeakSupervisionLoss(bending_weight=float(tr["bending_weight"]))
    gen = torch.Generator().manual_seed(seed)
    state_path = work / f"{cfg['output']['key']}_state.pt"
    state = LoopState()
    st: dict[str, Any] = {}
    if resume and state_path.exists():
        st = state_resume(state_path, model=model, opt=opt, gen=gen, device=device)
        state.step, state.history = int(st["step"]), list(st["history"])
        if sched is not None and st.get("scheduler"):
            sched.load_state_dict(st["scheduler"])
    if keep:  # step 0 (identity: the output layer starts at zero) is a candidate too
        state.best = st.get("best") or _best_initial(
            model, state.step, score(_validate(model, val_pairs, device))
        )
    step_loss = _step_loss(
        tr, model=model, loss_fn=loss_fn, pairs=train_pairs, gen=gen, device=device
    )
    started = time.perf_counter()
    # A wall-clock budget (a lent GPU's lease) stops early; the best validated state still ships.
    budget = float(tr.get("max_seconds") or 0.0)
    loop_run(
        model=model,
        opt=opt,
        gen=gen,
        state=state,
        steps=int(tr["steps"]),
        val_every=int(tr["val_every"]),
        state_path=state_path,
        step_loss=step_loss,
        validate=lambda: _validate(model, val_pairs, device),
        desc=f"train {arch}",
        quiet=quiet,
        sched=sched,
        score=score if keep else None,
        deadline=t0 + budget if budget else None,
    )
    if state.best is not None:
        model.load_state_dict(state.best["model"])
    val = _validate(model, val_pairs, device)
    path = checkpoint_ship(
        cfg,
        model=model,
        kind=cfg["model"].get("kind", "rern"),
        training_data=_training_data(cfg, len(train_pairs), len(val_pairs)),
        validation=val,
        input_shape=list(cfg["input_shape"]),
        extra={
            "history": state.history,
            "steps": state.step,
            "best_step": state.best and state.best["step"],
        },
    )
    return summary_make(path=path, validation=val, state=state, started=started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser(__doc__.split("\n")[0])
    args = parser.parse_args(argv)
    try:
        cfg = config_load(args.config)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.steps is not None:
        cfg["train"]["steps"] = args.steps
    summary_print(train(cfg, resume=args.resume))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
