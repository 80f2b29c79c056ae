"""The display grid keeps the patient's orientation whatever the acquisition (real series).

Readers score the side of a lesion, so the resampling onto the common axial grid must put the
patient's left on the screen's right (radiological), anterior at the top, for an oblique series
(ProstateX, ~18°, and NCI-ISBI, ~12°: no real plain axial series is at hand, every real T2
there is oblique), and be blind to how the voxels are stored
(flipped or transposed storage with the matching affine is the same image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from readerstudy.display import MATRIX, PIXEL_MM, SLICE_MM, SLICES, resample_to_display

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def _series(shared_data: Path, which: str) -> tuple[np.ndarray, np.ndarray]:
    from registration.dicom.read import series_load

    folder = {
        "prostatex-oblique": shared_data / "prostatex-0000-dicom" / "4.000000-t2tsetra-00702",
        "nci-isbi-oblique": shared_data / "nci-isbi-prostate3t" / "Prostate3T-03-0001",
    }[which]
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".dcm")
    loaded = series_load(paths, root=folder)
    return loaded.volume.astype(np.float32), np.asarray(loaded.affine, dtype=np.float64)


def _centre_lps(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    index = (np.asarray(volume.shape) - 1) / 2.0
    return RAS_TO_LPS @ (affine[:3, :3] @ index + affine[:3, 3])


def _oblique_degrees(affine: np.ndarray) -> float:
    normal = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
    return float(np.degrees(np.arccos(abs(normal[2]))))


SERIES = ["prostatex-oblique", "nci-isbi-oblique"]


@pytest.mark.parametrize("which", SERIES)
def test_flipped_or_transposed_storage_gives_the_same_display(shared_data, which):
    volume, affine = _series(shared_data, which)
    centre = _centre_lps(volume, affine)
    reference = resample_to_display(volume=volume, affine=affine, centre_lps=centre)
    assert reference.max() > 0
    # Storage flipped along i (affine adjusted): the same patient, so the same display.
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, volume.shape[0] - 1
    flipped = resample_to_display(volume=volume[::-1], affine=affine @ flip, centre_lps=centre)
    # Storage with i and j swapped.
    swap = np.eye(4)[[1, 0, 2, 3]]
    swapped = resample_to_display(
        volume=np.ascontiguousarray(volume.transpose(1, 0, 2)),
        affine=affine @ swap,
        centre_lps=centre,
    )
    scale = float(reference.max())
    assert np.abs(flipped - reference).max() <= 1e-4 * scale
    assert np.abs(swapped - reference).max() <= 1e-4 * scale


@pytest.mark.parametrize("which", SERIES)
def test_patient_left_anterior_lands_screen_right_top(shared_data, which):
    """A bright mark put 20 mm to the patient's left and 15 mm anterior of the centre."""
    volume, affine = _series(shared_data, which)
    assert _oblique_degrees(affine) > 10  # the premise: a truly oblique acquisition
    centre = _centre_lps(volume, affine)
    target_lps = centre + np.array([20.0, -15.0, 0.0])  # +x left, -y anterior
    target_ras = RAS_TO_LPS @ target_lps
    index = np.rint(np.linalg.solve(affine[:3, :3], target_ras - affine[:3, 3])).astype(int)
    marked = volume.copy()
    i, j, k = index
    marked[i - 3 : i + 4, j - 3 : j + 4, k : k + 1] = volume.max() * 10
    display = resample_to_display(volume=marked, affine=affine, centre_lps=centre)
    s, r, c = np.unravel_index(np.argmax(display), display.shape)
    half = (MATRIX - 1) / 2.0
    # Screen right is the patient's left; the top of the screen is anterior.
    assert c > half and r < half
    found = np.array(
        [(c - half) * PIXEL_MM, (r - half) * PIXEL_MM, (s - (SLICES - 1) / 2) * SLICE_MM]
    )
    # Within a voxel of the source (0.5 mm in plane, 3 mm slices) and a display slice.
    assert np.abs(found[:2] - [20.0, -15.0]).max() <= 2.5, found
    assert abs(found[2]) <= 3.0 + SLICE_MM, found
