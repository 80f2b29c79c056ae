"""The training loop shared by :mod:`inference.train_registration` and
:mod:`inference.train_segmentation`: YAML config over defaults, seeding and device, the step loop
with periodic validation, a resumable state, an optional best-validated state and wall-clock budget,
the self-describing checkpoint registered as the default of its kind, and the CLI around it.

The trainers supply what differs: the data, one training step (a loss tensor) and the validation
(a dict of floats).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from inference.models import checkpoint_save, device_pick
from inference.registry import CHECKPOINT_DIR, registry_register

__all__ = [
    "LoopState",
    "checkpoint_ship",
    "cli_parser",
    "config_merge",
    "config_read",
    "loop_run",
    "state_resume",
    "summary_make",
    "summary_print",
    "train_setup",
]


def config_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, nested mappings merged key by key (neither is modified)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            config_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def config_read(path: str | Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """Read a YAML config over ``defaults``; unknown top-level keys are an error."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"config {p} does not exist")
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{p}: top level must be a mapping")
    unknown = set(raw) - set(defaults)
    if unknown:
        raise ValueError(f"{p}: unknown keys {sorted(unknown)}; allowed {sorted(defaults)}")
    return config_merge(defaults, raw)


def train_setup(tr: dict[str, Any]) -> tuple[int, torch.device]:
    """Seed python, numpy and torch with ``train.seed``, set ``train.num_threads``; the seed and
    the device (``train.device``, CUDA when present for ``auto``)."""
    seed = int(tr["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if tr.get("num_threads"):
        torch.set_num_threads(int(tr["num_threads"]))
    return seed, device_pick(tr.get("device", "auto"))


@dataclass
class LoopState:
    """Where the loop stands: steps done, validation history, losses of this run, the best
    validated state (``{"step", "score", "model"}``) when the trainer keeps one."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    best: dict[str, Any] | None = None


def state_resume(
    path: Path,
    *,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    device: torch.device,
) -> dict[str, Any]:
    """Load the model, optimizer and generator state saved by :func:`loop_run`; the whole saved
    dict (``step``, ``history``, ``scheduler``, ``best``) for the caller."""
    st: dict[str, Any] = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    gen.set_state(st["generator"])
    return st


def _state_save(
    path: Path,
    *,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    state: LoopState,
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "step": state.step,
            "history": state.history,
            "scheduler": sched.state_dict() if sched is not None else None,
            "best": state.best,
        },
        tmp,
    )
    tmp.replace(path)


def loop_run(
    *,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    state: LoopState,
    steps: int,
    val_every: int,
    state_path: Path,
    step_loss: Callable[[], torch.Tensor],
    validate: Callable[[], dict[str, float]],
    desc: str,
    quiet: bool = False,
    sched: torch.optim.lr_scheduler.LRScheduler | None = None,
    score: Callable[[dict[str, float]], float] | None = None,
    deadline: float | None = None,
) -> LoopState:
    """Train until ``steps`` (or ``time.perf_counter() > deadline``).

    Each step: ``step_loss()`` (a scalar loss tensor of one batch), backward, optimizer step,
    scheduler step. Every ``val_every`` steps and at the last step: ``validate()`` goes into the
    history with the mean loss since the last validation, the best state is updated (``score``
    higher is better; only when ``state.best`` is not None) and the resumable state is saved to
    ``state_path`` (atomically).
    """
    val_every = max(int(val_every), 1)
    model.train()
    bar = tqdm(total=steps, initial=state.step, desc=desc, disable=quiet)
    while state.step < steps and not (deadline is not None and time.perf_counter() > deadline):
        loss = step_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        state.step += 1
        state.losses.append(float(loss))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(state.losses[-20:]):.3f}")
        if state.step % val_every == 0 or state.step == steps:
            val = validate()
            mean_loss = float(np.mean(state.losses[-val_every:]))
            state.history.append({"step": state.step, "loss": mean_loss, **val})
            bar.write(json.dumps(state.history[-1]))
            if state.best is not None and score is not None and score(val) > state.best["score"]:
                weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                state.best = {"step": state.step, "score": score(val), "model": weights}
            _state_save(state_path, model=model, opt=opt, gen=gen, sched=sched, state=state)
    bar.close()
    return state


def checkpoint_ship(
    cfg: dict[str, Any],
    *,
    model: torch.nn.Module,
    kind: str,
    training_data: dict[str, Any],
    validation: dict[str, float],
    input_shape: list[int],
    extra: dict[str, Any],
) -> Path:
    """Write ``<output.dir>/<output.key>.pt`` and, with ``output.register``, make it the default
    checkpoint of ``kind`` in that folder's registry."""
    out_dir = Path(cfg["output"].get("dir") or CHECKPOINT_DIR)
    key = cfg["output"]["key"]
    arch = cfg["model"]["architecture"]
    path = checkpoint_save(
        out_dir / f"{key}.pt",
        model=model,
        architecture=arch,
        arch_config=dict(cfg["model"].get("arch_config") or {}),
        config=cfg,
        training_data=training_data,
        validation=validation,
        input_shape=input_shape,
        extra=extra,
    )
    if cfg["output"].get("register", True):
        registry_register(
            key=key,
            path=path,
            kind=kind,
            entry={
                "architecture": arch,
                "synthetic": training_data["synthetic"],
                "description": training_data["description"],
                "validation": validation,
            },
            directory=out_dir,
        )
    return path


def summary_make(
    *, path: Path, validation: dict[str, float], state: LoopState, started: float
) -> dict[str, Any]:
    """What ``train`` returns: checkpoint, validation, history, seconds, first and last loss."""
    losses = state.losses
    return {
        "checkpoint": str(path),
        "validation": validation,
        "history": state.history,
        "seconds": time.perf_counter() - started,
        "first_loss": losses[0] if losses else float("nan"),
        "last_loss": float(np.mean(losses[-10:])) if losses else float("nan"),
    }


def cli_parser(
    description: str, *, steps_help: str = "override train.steps"
) -> argparse.ArgumentParser:
    """The trainers' common options: ``--config``, ``--resume``, ``--steps``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="YAML config (see inference/configs/)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from work_dir/<key>_state.pt"
    )
    parser.add_argument("--steps", type=int, help=steps_help)
    return parser


def summary_print(summary: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
