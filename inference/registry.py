"""Checkpoint files and the registry that names the default model of each kind.

``inference/checkpoints/registry.json``::

    {"defaults": {"rern": "<key>", "localnet": "<key>", "seg_mri": "<key>", "seg_trus": "<key>"},
     "checkpoints": {"<key>": {"file": "<key>.pt", "sha256": "...", "architecture": "RERN", ...}}}

A checkpoint ``.pt`` is a dict with ``state_dict``, ``architecture``, ``arch_config`` (constructor
kwargs), ``config`` (the training config), ``training_data`` (a description with a ``synthetic`` flag),
``code_version``, ``validation`` (metrics) and ``input_shape`` (the grid the network runs on). The
sha256 in the registry is of the file bytes and is verified at load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT_DIR",
    "CheckpointError",
    "CheckpointInfo",
    "checkpoint_resolve",
    "code_version",
    "file_sha256",
    "registry_load",
    "registry_register",
]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
REGISTRY_FILE = "registry.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, not registered, or fails its checksum."""


@dataclass(frozen=True)
class CheckpointInfo:
    """Where a checkpoint is and what the registry says about it."""

    key: str
    path: Path
    sha256: str
    entry: dict[str, Any]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the source tree when available (``0.1.0+abc1234``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        base = version("mritrus")
    except PackageNotFoundError:
        base = "0+unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return base
    commit = out.stdout.strip()
    return f"{base}+{commit}" if out.returncode == 0 and commit else base


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def registry_load(directory: Path = CHECKPOINT_DIR) -> dict[str, Any]:
    """The registry as a dict (empty defaults/checkpoints when the file is absent)."""
    path = directory / REGISTRY_FILE
    if not path.exists():
        return {"defaults": {}, "checkpoints": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    data.setdefault("defaults", {})
    data.setdefault("checkpoints", {})
    return dict(data)


def registry_register(
    *,
    key: str,
    path: Path,
    kind: str,
    entry: dict[str, Any],
    make_default: bool = True,
    directory: Path = CHECKPOINT_DIR,
) -> dict[str, Any]:
    """Add (or replace) a checkpoint in the registry, optionally as the default for ``kind``.

    The file must lie in ``directory``; its sha256 is recorded. The registry is rewritten atomically.
    """
    path = Path(path).resolve()
    if path.parent != directory.resolve():
        raise CheckpointError(f"{path} must be inside {directory} to be registered")
    reg = registry_load(directory)
    reg["checkpoints"][key] = {
        **entry,
        "kind": kind,
        "file": path.name,
        "sha256": file_sha256(path),
    }
    if make_default:
        reg["defaults"][kind] = key
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(reg, fh, indent=2, sort_keys=True)
        fh.write("\n")
    # mkstemp makes the file owner-only; workers may run as another user.
    os.chmod(tmp, 0o644)
    os.replace(tmp, directory / REGISTRY_FILE)
    return reg


def checkpoint_resolve(
    *, kind: str, key_or_path: str | None = None, directory: Path = CHECKPOINT_DIR
) -> CheckpointInfo:
    """Find a checkpoint: an explicit file path, a registry key, or the registry default for ``kind``.

    Raises:
        CheckpointError: nothing registered, unknown key, missing file or checksum mismatch.
    """
    reg = registry_load(directory)
    if key_or_path and (key_or_path.endswith(".pt") or os.sep in key_or_path):
        path = Path(key_or_path)
        if not path.exists():
            raise CheckpointError(f"checkpoint file {path} does not exist")
        return CheckpointInfo(key=path.stem, path=path, sha256=file_sha256(path), entry={})
    key = key_or_path or reg["defaults"].get(kind)
    if not key:
        raise CheckpointError(
            f"no default {kind!r} checkpoint in {directory / REGISTRY_FILE}; train one "
            f"(see inference/checkpoints/README.md) or pass a checkpoint path"
        )
    entry = reg["checkpoints"].get(key)
    if entry is None:
        raise CheckpointError(f"checkpoint {key!r} is not in {directory / REGISTRY_FILE}")
    path = directory / entry["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} for {key!r} is missing")
    digest = file_sha256(path)
    if entry.get("sha256") and digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} sha256 {digest[:12]}… does not match the registry "
            f"({entry['sha256'][:12]}…); the file was changed or corrupted"
        )
    return CheckpointInfo(key=key, path=path, sha256=digest, entry=dict(entry))
