"""Build networks by name and save/load checkpoints (torch side of :mod:`inference.registry`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference.networks import RERN, AttentionUNet2D
from inference.networks.localnet import LocalNetDDF
from inference.registry import CheckpointError, CheckpointInfo, code_version

__all__ = [
    "checkpoint_cache_enable",
    "checkpoint_load",
    "checkpoint_save",
    "device_pick",
    "model_build",
]

# Set by checkpoint_cache_enable(): (key, sha256, device) -> (model, meta). None = no caching.
_CACHE: dict[tuple[str, str, str], tuple[nn.Module, dict[str, Any]]] | None = None


def checkpoint_cache_enable() -> None:
    """Make :func:`checkpoint_load` return one shared model per (checkpoint, device) in this process.

    For long-lived workers: loading a checkpoint costs more than a small registration. Safe because
    the models are in eval mode and only run forward, and a worker process runs one job at a time.
    """
    global _CACHE
    if _CACHE is None:
        _CACHE = {}


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "RERN": RERN,
    "LocalNet": LocalNetDDF,
    "AttentionUNet2D": AttentionUNet2D,
}


def device_pick(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_build(architecture: str, arch_config: dict[str, Any]) -> nn.Module:
    """Instantiate a registered architecture with its constructor kwargs."""
    cls = ARCHITECTURES.get(architecture)
    if cls is None:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return cls(**arch_config)


def checkpoint_save(
    path: str | os.PathLike[str],
    *,
    model: nn.Module,
    architecture: str,
    arch_config: dict[str, Any],
    config: dict[str, Any],
    training_data: dict[str, Any],
    validation: dict[str, float],
    input_shape: list[int] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically (temporary file, then ``os.replace``)."""
    if "synthetic" not in training_data:
        raise ValueError("training_data must say whether the data was synthetic ('synthetic' key)")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "architecture": architecture,
        "arch_config": arch_config,
        "config": config,
        "training_data": training_data,
        "validation": validation,
        "code_version": code_version(),
        "input_shape": input_shape,
        **(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(suffix=".pt", dir=p.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; workers may run as another user
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def checkpoint_load(
    info: CheckpointInfo, *, device: torch.device | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint into an eval-mode model; returns ``(model, metadata without weights)``.

    After :func:`checkpoint_cache_enable`, a checkpoint already loaded on ``device`` is reused.
    """
    key = (str(info.key), str(info.sha256), str(device))
    if _CACHE is not None and key in _CACHE:
        return _CACHE[key]
    try:
        payload = torch.load(info.path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/foreign files
        raise CheckpointError(f"cannot read checkpoint {info.path}: {exc}") from exc
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{info.path} is not an inference checkpoint (no state_dict)")
    model = model_build(payload["architecture"], payload["arch_config"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    if device is not None:
        model.to(device)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    if _CACHE is not None:
        _CACHE[key] = (model, meta)
    return model, meta
