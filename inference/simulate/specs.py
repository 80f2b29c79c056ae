"""The simulator's constants and data types: lesion specs, real anatomy sources, the simulated pair.

Numpy + scipy + nibabel only (no torch): the web process imports :mod:`inference.simulate`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference.io import label_load, volume_load

SIM_VERSION = "1"
US_SHAPE: tuple[int, int, int] = (81, 118, 88)
US_SPACING = 0.8
MR_SHAPE: tuple[int, int, int] = (160, 160, 40)
MR_SPACING: tuple[float, float, float] = (0.75, 0.75, 2.5)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]
Side = Literal["left", "right"]
Zone = Literal["pz", "tz"]

# Where the gland centre sits on the TRUS grid (voxel), i.e. ~28 mm in front of the grid's posterior
# face, which is the probe side. The probe surface is at j = PROBE_J.
US_GLAND_VOXEL = (0.5, 0.3, 0.5)  # fractions of the TRUS shape
PROBE_J = 3.0


# ------------------------------------------------------------------------------------------------
# Public data types


@dataclass(frozen=True)
class LesionSpec:
    """A lesion to simulate: patient side, zone, radius (mm) and conspicuity in [0, 1]."""

    side: Side
    zone: Zone = "pz"
    radius_mm: float = 5.0
    conspicuity: float = 0.8

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"LesionSpec.side must be 'left' or 'right', got {self.side!r}")
        if self.zone not in ("pz", "tz"):
            raise ValueError(f"LesionSpec.zone must be 'pz' or 'tz', got {self.zone!r}")
        if not 1.0 <= self.radius_mm <= 15.0:
            raise ValueError(f"LesionSpec.radius_mm must be in 1..15 mm, got {self.radius_mm}")
        if not 0.0 <= self.conspicuity <= 1.0:
            raise ValueError(f"LesionSpec.conspicuity must be in 0..1, got {self.conspicuity}")


@dataclass
class SimSource:
    """A real T2 volume with its whole-gland mask on the same grid (the anatomy of a simulated pair)."""

    t2: F32
    affine: F64
    mask: U8
    name: str = "source"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.t2.ndim != 3:
            raise ValueError(f"SimSource {self.name}: T2 must be 3-D, got shape {self.t2.shape}")
        if self.mask.shape != self.t2.shape:
            raise ValueError(
                f"SimSource {self.name}: mask shape {self.mask.shape} differs from T2 shape "
                f"{self.t2.shape}"
            )
        if np.asarray(self.affine).shape != (4, 4):
            raise ValueError(f"SimSource {self.name}: affine must be 4x4")
        if not np.isfinite(self.t2).all():
            raise ValueError(f"SimSource {self.name}: T2 has NaN or infinite voxels")
        if int(self.mask.sum()) < 100:
            raise ValueError(f"SimSource {self.name}: gland mask has fewer than 100 voxels")

    @classmethod
    def from_files(
        cls, t2_path: str | os.PathLike[str], mask_path: str | os.PathLike[str]
    ) -> SimSource:
        """Load a T2 NIfTI and its gland mask NIfTI; both must share shape and affine."""
        t2, aff = volume_load(t2_path)
        mask, maff = label_load(mask_path)
        if mask.shape != t2.shape or not np.allclose(aff, maff, atol=1e-3):
            raise ValueError(f"{mask_path}: mask grid differs from the T2 grid of {t2_path}")
        return cls(t2=t2, affine=aff, mask=mask, name=Path(t2_path).name.split(".")[0])

    @classmethod
    def from_promise12(
        cls, name: str, directory: str | os.PathLike[str] | None = None
    ) -> SimSource:
        """A PROMISE12 case (real T2 + manual mask, assumed spacing) via :mod:`inference.datasets`."""
        from inference.datasets import promise12_load

        case = promise12_load(name, directory)
        return cls(t2=case.image, affine=case.affine, mask=case.label, name=f"promise12-{name}")

    def smoothed_mask(self) -> F32:
        """Gland mask blurred by ~1 mm: its 0.5 level is the boundary, its slope the capsule band."""
        if "soft" not in self._cache:
            sp = np.linalg.norm(self.affine[:3, :3], axis=0)
            self._cache["soft"] = ndimage.gaussian_filter(
                self.mask.astype(np.float32), sigma=tuple(1.0 / s for s in sp)
            )
        return np.asarray(self._cache["soft"], dtype=np.float32)

    def gland_points_world(self) -> F64:
        """World coordinates (N, 3) of the gland voxels."""
        if "pts" not in self._cache:
            idx = np.argwhere(self.mask > 0).astype(np.float64)
            self._cache["pts"] = idx @ self.affine[:3, :3].T + self.affine[:3, 3]
        return np.asarray(self._cache["pts"])

    def inner_depth_mm(self) -> F32:
        """Distance (mm) of each voxel to the gland boundary, inside the gland; 0 outside."""
        if "edt" not in self._cache:
            sp = np.linalg.norm(self.affine[:3, :3], axis=0)
            self._cache["edt"] = ndimage.distance_transform_edt(self.mask > 0, sampling=sp).astype(
                np.float32
            )
        return np.asarray(self._cache["edt"], dtype=np.float32)

    def gland_median(self) -> float:
        if "med" not in self._cache:
            self._cache["med"] = float(np.median(self.t2[self.mask > 0]))
        return float(self._cache["med"])


@dataclass
class SimulatedPair:
    """One simulated MR/TRUS pair. Images ``float32``, labels ``uint8``, affines 4x4 RAS+.

    ``us_affine`` is the TRUS's own frame (default) or the MR scanner frame (``frame="shared"``);
    ``us_affine_mr`` is always the TRUS grid's affine in the MR scanner frame (ground truth only:
    a registration must not use it). ``displacement`` is ``(3, *us.shape)`` in TRUS voxels:
    ``warped(p) = mr_on_us(p + u(p))`` with ``mr_on_us`` the MR resampled through ``us_affine_mr``
    (:func:`mr_resample_to_us`). ``landmark_names[k - 1]`` names landmark value ``k``.
    """

    mr: F32
    mr_affine: F64
    mr_label: U8
    mr_landmarks: U8
    us: F32
    us_affine: F64
    us_label: U8
    us_landmarks: U8
    us_fov: U8
    displacement: F32
    landmark_names: tuple[str, ...]
    lesions: tuple[dict[str, Any], ...]
    lesion_side: str
    seed: int
    source: str
    params: dict[str, Any]
    synthetic: bool = True
    us_affine_mr: F64 | None = None


def sim_sources_load(directory: str | os.PathLike[str]) -> list[SimSource]:
    """Real sources from a folder of ``prostate_T2_<n>.nii.gz`` + ``prostate_segm_<n>.nii.gz`` (Yale)."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"source folder {d} does not exist")
    out = []
    for t2 in sorted(d.glob("prostate_T2_*.nii*")):
        suffix = t2.name[len("prostate_T2_") :]
        mask = d / f"prostate_segm_{suffix}"
        if not mask.exists():
            raise FileNotFoundError(f"{t2} has no gland mask {mask.name} beside it")
        out.append(SimSource.from_files(t2, mask))
    if not out:
        raise FileNotFoundError(f"{d} holds no prostate_T2_<n>.nii.gz files")
    return out


def sim_sources_promise12(
    which: str, directory: str | os.PathLike[str] | None = None
) -> list[SimSource]:
    """PROMISE12 sources: ``"heldout"``, ``"training"`` (see :mod:`inference.datasets`) or names
    separated by commas (``"train04,train09"``)."""
    from inference.datasets import PROMISE12_HELDOUT, promise12_training

    if which == "heldout":
        names = list(PROMISE12_HELDOUT)
    elif which == "training":
        names = promise12_training(directory)
    else:
        names = [n.strip() for n in which.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no PROMISE12 cases selected by {which!r}")
    return [SimSource.from_promise12(n, directory) for n in names]
