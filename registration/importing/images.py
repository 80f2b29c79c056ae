"""Reading one image column of a case: a DICOM series folder, a DICOM SEG (labels) or a NIfTI
file, with the voxel-count limit checked from the header before any voxel is decoded.

Errors name the file by its role ("the file", "file 3 of 20"), never by its path: file names of
clinical exports often carry patient names (see `registration.dicom.read`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from inference.manifest import IMAGE_COLUMNS, LABEL_COLUMNS, LANDMARK_COLUMNS
from registration.dicom.deid_vocab import CODE_TERMS
from registration.dicom.read import (
    SEG_STORAGE,
    DicomInputError,
    error_text,
    header_read,
    is_dicom,
    series_load,
    voxels_check,
)
from registration.dicom.seg import seg_load_onto
from registration.importing.cases import files_under, source_label
from registration.series import CaseImage, grid_matches

# Each image column of the manifest (inference.manifest) -> (modality, kind, the image column whose
# grid it must share, expected DICOM modality), in loading order: both images before any label.
# The column tuples pair up in the same order: MR first, then TRUS.
_MODALITIES = (("MR_T2", "MR"), ("US", "US"))
COLUMN_ROLES: dict[str, tuple[str, str, str, str]] = {
    **{c: (m, "original", "", d) for c, (m, d) in zip(IMAGE_COLUMNS, _MODALITIES)},
    **{c: (m, "label", i, "") for c, i, (m, _) in zip(LABEL_COLUMNS, IMAGE_COLUMNS, _MODALITIES)},
    **{
        c: (m, "landmarks", i, "")
        for c, i, (m, _) in zip(LANDMARK_COLUMNS, IMAGE_COLUMNS, _MODALITIES)
    },
}


class ImageError(ValueError):
    """One image of a case cannot be read (the caller adds the row and column)."""


def max_voxels() -> int:
    return int(settings.MRITRUS_IMPORT_MAX_VOXELS)


def modality_word(modality: str) -> str:
    """A DICOM modality as a vocabulary word ("other" for anything a header may have made up)."""
    return modality if modality in CODE_TERMS["Modality"] else "other"


def _nifti_load(path: Path, root: Path) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    name = "the file"
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ImageError(
            f"{name} is neither a NIfTI file (.nii, .nii.gz) nor a DICOM series folder"
        )
    try:
        img = nib.load(str(path))  # the header only: the voxels are read below
    except Exception as exc:  # nibabel/gzip/zlib raise many unrelated types for bad files
        raise ImageError(f"{name} is not a readable NIfTI file ({error_text(exc)})") from exc
    try:
        shape = tuple(img.shape)  # type: ignore[attr-defined]
        voxels_check(shape=shape, max_voxels=max_voxels(), what=name)
    except DicomInputError as exc:
        raise ImageError(str(exc)) from exc
    try:
        data = np.asarray(img.dataobj, dtype=np.float64)  # type: ignore[attr-defined]
        affine = np.asarray(img.affine, dtype=np.float64)  # type: ignore[attr-defined]
    except Exception as exc:  # nibabel/gzip/zlib raise many unrelated types for bad files
        raise ImageError(f"{name} is not a readable NIfTI file ({error_text(exc)})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if not np.all(np.isfinite(data)):
        raise ImageError(f"{name} contains NaN or infinite voxel values")
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ImageError(f"{name} has an invalid (singular or non-finite) affine")
    return data, affine


def _dicom_folder_image(*, root: Path, column: str, path: Path) -> CaseImage:
    modality, kind, parent_column, dicom_modality = COLUMN_ROLES[column]
    name = "the folder"
    files = files_under(path)
    if not files:
        raise ImageError(f"{name} is an empty folder")
    for k, f in enumerate(files):
        if not is_dicom(f):
            raise ImageError(
                f"file {k + 1} of {len(files)}: not a DICOM file (non-image file in a series folder)"
            )
    series = series_load(files, root=root, max_voxels=max_voxels())
    if dicom_modality and series.modality != dicom_modality:
        raise ImageError(
            f"{name} has DICOM modality '{modality_word(series.modality)}', "
            f"expected {dicom_modality}"
        )
    array: NDArray[Any] = series.volume
    if kind == "label":
        array = (array > 0.5).astype(np.uint8)  # as for NIfTI: any zone is gland
    elif kind == "landmarks":
        if not series.integer_valued or array.min() < 0 or array.max() > 255:
            raise ImageError(f"{name} landmark values must be integers 0–255")
        array = array.astype(np.uint8)
    return CaseImage(
        column=column,
        modality=modality,
        kind=kind,
        array=array,
        affine=series.affine,
        source=source_label(files, kind="dicom"),
        source_format="dicom",
        dicom=series if kind == "original" else None,
        label_of_column=parent_column,
    )


def _seg_image(*, root: Path, column: str, path: Path, parent: CaseImage | None) -> CaseImage:
    modality, kind, parent_column, _ = COLUMN_ROLES[column]
    name = "the file"
    header = header_read(path, root=root, label=name)
    if header.get("SOPClassUID") != SEG_STORAGE or kind != "label":
        raise ImageError(
            f"{name} is a single DICOM file; give a series folder (or a DICOM SEG for a label)"
        )
    if parent is None or parent.dicom is None:
        raise ImageError(
            f"{name} is a DICOM SEG; its image column {parent_column} must be a DICOM series"
        )
    array = seg_load_onto(path, parent.dicom, root=root, max_voxels=max_voxels())
    image = CaseImage(
        column=column,
        modality=modality,
        kind=kind,
        array=array,
        affine=parent.affine,
        source=source_label([path], kind="seg"),
        source_format="seg",
        seg_series_uid=str(header.get("SeriesInstanceUID", "")),
        label_of_column=parent_column,
    )
    image.notes.append(
        f"{column}: DICOM SEG read onto its referenced series ({int(array.max())} segment(s))"
    )
    return image


def _nifti_image(*, root: Path, column: str, path: Path) -> CaseImage:
    modality, kind, parent_column, _ = COLUMN_ROLES[column]
    name = "the file"
    data, affine = _nifti_load(path, root)
    array: NDArray[Any]
    if kind == "original":
        if data.ndim != 3:
            raise ImageError(f"{name} must be a 3-D volume, got shape {data.shape}")
        array = data.astype(np.float32)
    elif data.ndim == 4:
        # DeepReg layout: channel 0 gland, channels 1.. landmarks (docs/architecture.md).
        from inference.io import deepreg_label_split

        gland, landmarks = deepreg_label_split(data)
        array = gland if kind == "label" else landmarks
    elif data.ndim != 3:
        raise ImageError(f"{name} must be a 3-D label volume, got shape {data.shape}")
    elif kind == "label":
        # Multi-zone masks (e.g. peripheral/transition zone) collapse to whole gland.
        if data.min() < 0:
            raise ImageError(f"{name} has negative label values")
        array = (data > 0.5).astype(np.uint8)
    else:
        rounded = np.rint(data)
        if np.any(np.abs(rounded - data) > 1e-3) or rounded.min() < 0 or rounded.max() > 255:
            raise ImageError(f"{name} landmark values must be integers 0–255")
        array = rounded.astype(np.uint8)
    return CaseImage(
        column=column,
        modality=modality,
        kind=kind,
        array=array,
        affine=affine,
        source=source_label([path], kind="nifti"),
        source_format="nifti",
        label_of_column=parent_column,
    )


def image_load(
    *, root: Path, column: str, path: Path, images: dict[str, CaseImage]
) -> list[CaseImage]:
    """Read the image of ``column`` at ``path``; a label must share the grid of its image, already
    in ``images``."""
    _, kind, parent_column, _ = COLUMN_ROLES[column]
    parent = images.get(parent_column) if parent_column else None
    # Named by role, never by path (see registration.dicom.read).
    name = "the folder" if path.is_dir() else "the file"
    if path.is_dir():
        image = _dicom_folder_image(root=root, column=column, path=path)
    elif is_dicom(path):
        image = _seg_image(root=root, column=column, path=path, parent=parent)
    else:
        image = _nifti_image(root=root, column=column, path=path)
    if parent is not None and not grid_matches(
        shape=image.array.shape,
        affine=image.affine,
        other_shape=parent.array.shape,
        other_affine=parent.affine,
    ):
        raise ImageError(
            f"{name} grid {list(image.array.shape)} does not match the {parent_column} image grid "
            f"{list(parent.array.shape)} (shape or voxel positions differ)"
        )
    if kind in ("label", "landmarks") and not np.any(image.array):
        image.notes.append(f"{column}: the label volume is empty")
    if kind == "original" and float(np.ptp(image.array)) == 0.0:
        raise ImageError(f"{name} is a constant image (no contrast)")
    return [image]
