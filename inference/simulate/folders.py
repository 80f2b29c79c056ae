"""Output folders built in a temporary sibling and moved into place, so a failure leaves nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def output_fresh(out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Check ``out_dir`` is absent or empty; return it and a temporary sibling to build into."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    return out, tmp


def output_commit(tmp: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()  # empty, checked by output_fresh
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary shared folder
    os.replace(tmp, out)
