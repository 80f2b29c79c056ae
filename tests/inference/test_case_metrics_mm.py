"""Registration metrics are in millimetres on the TRUS grid, not voxels (SYNTHETIC geometry).

`case_metrics` is what a job stores and shows; with anisotropic TRUS voxels a metric computed
in voxels differs from the same metric in mm, so each value below pins the unit.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.case_metrics import case_metrics

SPACING = (0.5, 0.8, 2.5)  # mm per voxel along i, j, k


def _affine() -> np.ndarray:
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 30.0]
    return affine


def test_hd95_and_tre_are_in_mm_on_a_known_geometry() -> None:
    us_label = np.zeros((40, 40, 40), np.uint8)
    us_label[10:20, 10:20, 10:20] = 1
    mr_label = np.roll(us_label, 3, axis=2)  # 3 slices of 2.5 mm: 7.5 mm (3 "voxels")
    us_landmarks = np.zeros_like(us_label)
    mr_landmarks = np.zeros_like(us_label)
    us_landmarks[12, 14, 5] = 1
    mr_landmarks[15, 14, 5] = 1  # 3 voxels along i: 1.5 mm
    us_landmarks[30, 30, 30] = 2
    mr_landmarks[30, 30, 31] = 2  # 1 voxel along k: 2.5 mm
    affine = _affine()
    met = case_metrics(
        world=np.eye(4),
        displacement=np.zeros((3, 40, 40, 40), np.float32),
        mr_label_initial=mr_label,
        warped_mr_label=us_label,
        us_label=us_label,
        mr_landmarks=mr_landmarks,
        us_landmarks=us_landmarks,
        mr_affine=affine,
        us_affine=affine,
    )
    assert met["hd95_initial"] == pytest.approx(7.5)
    assert met["hd95_after"] == pytest.approx(0.0)
    assert met["tre_initial_1"] == pytest.approx(1.5)
    assert met["tre_initial_2"] == pytest.approx(2.5)
    assert met["tre_initial_mean"] == pytest.approx(2.0)
    # The deformable part is zero: the landmarks stay where the frame alignment put them.
    assert met["tre_after_mean"] == pytest.approx(2.0)
    assert met["folding_fraction"] == 0.0


def test_tre_follows_the_frame_alignment_in_mm() -> None:
    """A 6 mm shift of the MR frame (world) moves every MR landmark by 6 mm on the TRUS grid."""
    us = np.zeros((20, 20, 20), np.uint8)
    mr = np.zeros_like(us)
    us[10, 10, 10] = 1
    mr[10, 10, 10] = 1
    world = np.eye(4)
    world[2, 3] = 6.0  # TRUS world → MR world: 6 mm along z (2.4 TRUS slices)
    affine = _affine()
    met = case_metrics(
        world=world,
        displacement=np.zeros((3, 20, 20, 20), np.float32),
        mr_label_initial=None,
        warped_mr_label=None,
        us_label=None,
        mr_landmarks=mr,
        us_landmarks=us,
        mr_affine=affine,
        us_affine=affine,
    )
    assert met["tre_initial_1"] == pytest.approx(6.0)
