"""NIfTI input/output and label conventions (numpy + nibabel only, no torch).

Volumes are returned in nibabel voxel order ``(i, j, k)`` with their 4x4 RAS+ affine. Images are
``float32``; labels are ``uint8``. Landmark labels are a single integer volume where value ``k > 0``
marks landmark ``k``; the DeepReg 4-D layout (channel 0 gland, channels 1.. landmarks) is converted to
that form by :func:`deepreg_label_split`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "deepreg_label_split",
    "label_load",
    "landmarks_load",
    "volume_load",
    "volume_save",
]


def _load(path: str | os.PathLike[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such NIfTI file: {p}")
    try:
        img = nib.load(str(p))
    except Exception as exc:  # nibabel raises several unrelated types for bad files
        raise ValueError(f"{p} is not a readable NIfTI file: {exc}") from exc
    data = np.asarray(img.dataobj, dtype=np.float64)  # type: ignore[attr-defined]
    return data, np.asarray(img.affine, dtype=np.float64)  # type: ignore[attr-defined]


def volume_load(path: str | os.PathLike[str]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Load a 3-D image volume.

    Returns:
        ``(array (X, Y, Z) float32, affine (4, 4) float64)``. A trailing singleton 4th axis is dropped.
    """
    data, affine = _load(path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    return data.astype(np.float32), affine


def label_load(path: str | os.PathLike[str]) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """Load a gland label: any non-zero voxel is gland (multi-zone masks collapse to whole gland).

    A DeepReg 4-D label file is accepted too; its channel 0 is taken.

    Returns:
        ``(label (X, Y, Z) uint8 in {0, 1}, affine (4, 4))``.
    """
    data, affine = _load(path)
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D label volume, got shape {data.shape}")
    return (data > 0.5).astype(np.uint8), affine


def landmarks_load(path: str | os.PathLike[str]) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """Load a landmark label volume (value k marks landmark k).

    A DeepReg 4-D label (channel 0 gland, channels 1.. landmarks) is converted with
    :func:`deepreg_label_split` and its landmark volume returned.
    """
    data, affine = _load(path)
    if data.ndim == 4:
        return deepreg_label_split(data)[1], affine
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D landmark volume, got shape {data.shape}")
    rounded = np.rint(data)
    if rounded.min() < 0 or rounded.max() > 255:
        raise ValueError(
            f"{path}: landmark values must lie in 0..255, got {data.min()}..{data.max()}"
        )
    return rounded.astype(np.uint8), affine


def deepreg_label_split(
    label: NDArray[np.floating] | NDArray[np.integer],
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Split a DeepReg 4-D label ``(X, Y, Z, C)`` into a gland label and a landmark label volume.

    Channel 0 is the gland; channel ``c >= 1`` becomes landmark value ``c``. Where landmark channels
    overlap, the higher channel wins (DeepReg landmarks are small disjoint blobs, so this is rare).

    Returns:
        ``(gland (X, Y, Z) uint8 in {0, 1}, landmarks (X, Y, Z) uint8 with values 0..C-1)``.
    """
    arr = np.asarray(label)
    if arr.ndim != 4 or arr.shape[3] < 1:
        raise ValueError(f"DeepReg label must have shape (X, Y, Z, C) with C >= 1, got {arr.shape}")
    if arr.shape[3] > 256:
        raise ValueError(f"DeepReg label has {arr.shape[3]} channels; at most 256 are supported")
    gland = (arr[..., 0] > 0.5).astype(np.uint8)
    landmarks = np.zeros(arr.shape[:3], dtype=np.uint8)
    for c in range(1, arr.shape[3]):
        landmarks[arr[..., c] > 0.5] = c
    return gland, landmarks


def volume_save(
    path: str | os.PathLike[str],
    array: NDArray[np.generic],
    affine: NDArray[np.floating],
) -> Path:
    """Write a volume as NIfTI atomically (temporary file in the same folder, then ``os.replace``).

    ``uint8`` arrays are written as labels, everything else as ``float32``.
    """
    p = Path(path)
    arr = np.asarray(array)
    if arr.ndim not in (3, 4):
        raise ValueError(f"volume_save expects a 3-D or 4-D array, got shape {arr.shape}")
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {aff.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
    p.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(arr, aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    suffix = ".nii.gz" if p.name.endswith(".nii.gz") else ".nii"
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=p.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
