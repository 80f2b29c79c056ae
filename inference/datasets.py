"""Real training data in ``../shared/data`` and the one split every model and figure uses.

PROMISE12 (research use under the challenge's terms; Litjens et al., Med Image Anal 18(2), 2014):
39 T2 volumes with manual whole-gland masks, resampled by their distributor to ``(z, y, x) =
(32, 128, 128)`` **without their spacing**. Looking at them: rows run anterior → posterior (rectum
at the bottom), columns patient right → left (radiological display) and slices inferior → superior
(the bladder, bright on T2, lies above the gland's last slice in every case). :func:`promise12_load`
returns them as ``(X, Y, Z)`` arrays with an LPS-ordered RAS+ affine (like a DICOM-converted NIfTI)
and an **assumed** spacing: 1.0 × 1.0 × 3.0 mm, scaled isotropically per case only when that would
put the gland outside 20–90 mL (one case would otherwise be 270 mL). Figures in mm on these
volumes are therefore approximate; Dice is not affected.

The split (one source for every trainer, test and table): :data:`PROMISE12_HELDOUT` is never used to
train a shipped model (MRI segmenter, TRUS segmenter, RERN, LocalNet); held-out figures and the CI
tests use only these cases. Cross-validation of the MRI segmenter uses all 39 cases, split by case.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PROMISE12_ASSUMED_SPACING",
    "PROMISE12_HELDOUT",
    "Promise12Case",
    "promise12_cases",
    "promise12_load",
    "promise12_training",
    "shared_data_dir",
]

# Every fifth case (1 in 4-5 of each site, since cases are numbered by site): 9 held-out glands.
PROMISE12_HELDOUT: tuple[str, ...] = (
    "train04",
    "train09",
    "train14",
    "train19",
    "train24",
    "train29",
    "train34",
    "train39",
    "train44",
)
PROMISE12_ASSUMED_SPACING: tuple[float, float, float] = (1.0, 1.0, 3.0)
_GLAND_ML_RANGE = (20.0, 90.0)


def shared_data_dir() -> Path:
    """``$MRITRUS_SHARED_DATA`` or ``../shared/data`` next to the repository root."""
    env = os.environ.get("MRITRUS_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class Promise12Case:
    """One PROMISE12 volume: ``image`` float32 ``(X, Y, Z)``, ``label`` uint8 ``(X, Y, Z)``, RAS+ ``affine``."""

    name: str
    image: NDArray[np.float32]
    label: NDArray[np.uint8]
    affine: NDArray[np.float64]


def promise12_cases(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Names (``trainNN``) of the PROMISE12 cases present, sorted."""
    root = Path(directory) if directory else shared_data_dir() / "promise12-t2"
    return sorted(p.stem for p in root.glob("train*.npz"))


def promise12_training(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """The cases a shipped model may train on (all but :data:`PROMISE12_HELDOUT`)."""
    return [c for c in promise12_cases(directory) if c not in PROMISE12_HELDOUT]


def promise12_load(name: str, directory: str | os.PathLike[str] | None = None) -> Promise12Case:
    """Load one case as ``(X, Y, Z)`` with the assumed spacing (see the module docstring)."""
    root = Path(directory) if directory else shared_data_dir() / "promise12-t2"
    path = root / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"PROMISE12 case {name!r} not found at {path}")
    with np.load(path) as d:
        image = np.transpose(d["image"], (2, 1, 0)).astype(np.float32)
        label = (np.transpose(d["label"], (2, 1, 0)) > 0).astype(np.uint8)
    sp = np.asarray(PROMISE12_ASSUMED_SPACING, dtype=np.float64)
    ml = float(label.sum()) * float(np.prod(sp)) / 1000.0
    lo, hi = _GLAND_ML_RANGE
    if ml > 0 and not lo <= ml <= hi:
        sp = sp * (float(np.clip(ml, lo, hi)) / ml) ** (1.0 / 3.0)
    affine = np.diag([-sp[0], -sp[1], sp[2], 1.0])
    # Centre the grid on the world origin, as a scanner's isocentre roughly is.
    affine[:3, 3] = -affine[:3, :3] @ ((np.asarray(image.shape) - 1) / 2.0)
    return Promise12Case(name=name, image=image, label=label, affine=affine)
