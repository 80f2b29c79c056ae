"""Known-answer tests of inference.metrics (synthetic spheres and fields)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import compute_hausdorff_distance

from inference import metrics as M
from tests.inference.synthetic import ball


def test_dice_of_identical_and_disjoint_masks():
    a = ball((20, 20, 20), (10, 10, 10), 5)
    assert M.dice(a, a) == 1.0
    b = ball((20, 20, 20), (3, 3, 3), 2)
    c = ball((20, 20, 20), (16, 16, 16), 2)
    assert M.dice(b, c) == 0.0
    assert M.dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 4))) == 1.0


def test_confusion_metrics_known_counts():
    pred = np.zeros((10, 10, 10), np.uint8)
    target = np.zeros_like(pred)
    pred[:5] = 1  # 500 voxels
    target[3:8] = 1  # 500 voxels, overlap 200
    assert M.dice(pred, target) == pytest.approx(2 * 200 / 1000)
    assert M.precision(pred, target) == pytest.approx(200 / 500)
    assert M.recall(pred, target) == pytest.approx(200 / 500)
    # TN = 1000 - 200 - 300 - 300
    assert M.accuracy(pred, target) == pytest.approx((200 + 200) / 1000)


def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(3, 3, 3\).*\(3, 3, 4\)"):
        M.dice(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)))


def test_hd95_shifted_box_is_the_shift_in_mm_with_anisotropic_spacing():
    a = np.zeros((40, 40, 40), np.uint8)
    a[10:20, 10:20, 10:20] = 1
    b = np.roll(a, 3, axis=2)
    # every surface point of one box is within 3 voxels of the other; faces orthogonal to the shift
    # are exactly 3 voxels apart, so the 95th percentile distance is 3 voxels along axis 2
    assert M.hd95(a, b, spacing=(1.0, 1.0, 2.5)) == pytest.approx(7.5)
    assert M.hd95(a, b, spacing=(0.5, 0.5, 1.0)) == pytest.approx(3.0)
    assert M.hd95(a, a) == 0.0
    assert np.isnan(M.hd95(a, np.zeros_like(a)))


def test_hd95_matches_monai_on_shifted_spheres():
    a = ball((48, 48, 48), (22, 24, 24), 10)
    b = ball((48, 48, 48), (26, 23, 25), 8)
    spacing = (0.8, 1.0, 2.0)
    ours = M.hd95(a, b, spacing)
    ref = compute_hausdorff_distance(
        torch.from_numpy(a)[None, None],
        torch.from_numpy(b)[None, None],
        percentile=95,
        spacing=spacing,
    )
    assert ours == pytest.approx(float(ref), rel=1e-5)


def test_tre_known_translation_and_spacing():
    shape = (30, 30, 30)
    fixed = np.zeros(shape, np.uint8)
    moving = np.zeros(shape, np.uint8)
    fixed[ball(shape, (10, 10, 10), 2) > 0] = 1
    moving[ball(shape, (12, 10, 13), 2) > 0] = 1
    fixed[ball(shape, (20, 20, 20), 2) > 0] = 2
    moving[ball(shape, (20, 16, 20), 2) > 0] = 2
    spacing = (0.5, 1.0, 2.0)
    before = M.tre(fixed, moving, None, spacing)
    assert before["tre_1"] == pytest.approx(np.hypot(2 * 0.5, 3 * 2.0))
    assert before["tre_2"] == pytest.approx(4.0)
    assert before["tre_mean"] == pytest.approx((before["tre_1"] + before["tre_2"]) / 2)
    # a uniform translation that exactly maps landmark 1 leaves landmark 2 off by the difference
    u = np.zeros((3, *shape), np.float32)
    u[0], u[2] = 2.0, 3.0
    after = M.tre(fixed, moving, u, spacing)
    assert after["tre_1"] == pytest.approx(0.0, abs=1e-6)
    assert after["tre_2"] == pytest.approx(np.sqrt((2 * 0.5) ** 2 + 4.0**2 + (3 * 2.0) ** 2))


def test_tre_without_shared_landmarks_is_nan():
    a = np.zeros((8, 8, 8), np.uint8)
    a[2, 2, 2] = 1
    b = np.zeros_like(a)
    b[4, 4, 4] = 2
    assert np.isnan(M.tre(a, b)["tre_mean"])


def test_folding_fraction_identity_translation_and_fold():
    shape = (12, 12, 12)
    zero = np.zeros((3, *shape), np.float32)
    assert M.folding_fraction(zero) == 0.0
    assert M.folding_fraction(zero + 5.0) == 0.0
    assert np.allclose(M.jacobian_determinant(zero), 1.0)
    # u_0 = -2 x_0: φ_0 = -x_0 (a mirror) has det J = -1 everywhere
    mirror = zero.copy()
    mirror[0] = -2 * np.indices(shape)[0]
    assert M.folding_fraction(mirror) == 1.0
    # uniform scaling by 2 has det 8
    scale = np.indices(shape).astype(np.float32)
    assert np.allclose(M.jacobian_determinant(scale), 8.0)


def test_folding_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(3, X, Y, Z\).*\(2, 4, 4, 4\)"):
        M.folding_fraction(np.zeros((2, 4, 4, 4)))


def test_spacing_from_oblique_affine():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.8, 0.5, 3.0])
    assert M.spacing_from_affine(aff) == pytest.approx((0.8, 0.5, 3.0))
