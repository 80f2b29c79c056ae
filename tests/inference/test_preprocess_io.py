"""Preprocessing (crop, normalise, resize, enhancement, resampling, augmentation) and NIfTI io."""

from __future__ import annotations

import numpy as np
import pytest

from inference import io as iio
from inference import preprocess as P
from tests.inference.synthetic import ball


def test_frames_crop_paper_fractions():
    vol = np.arange(40).reshape(1, 1, 40) * np.ones((2, 3, 1))
    mri, keep = P.frames_crop(vol, first=0.1, last=0.1)
    assert keep == slice(4, 36) and mri.shape == (2, 3, 32)
    trus = np.zeros((80, 5, 6))
    out, keep = P.frames_crop(trus, first=0.25, last=0.125, axis=0)
    assert keep == slice(20, 70) and out.shape == (50, 5, 6)
    with pytest.raises(ValueError, match="sum below 1"):
        P.frames_crop(vol, first=0.6, last=0.5)
    with pytest.raises(ValueError, match=r"3-D.*\(4, 4\)"):
        P.frames_crop(np.zeros((4, 4)), first=0.1, last=0.1)


def test_normalise_and_resize():
    rng = np.random.default_rng(0)
    vol = rng.normal(100, 20, size=(20, 30, 8)).astype(np.float32)
    n = P.intensity_normalise(vol)
    assert n.min() == 0.0 and n.max() == pytest.approx(1.0)
    z = P.intensity_normalise(vol, mode="zscore")
    assert abs(float(z.mean())) < 0.05
    assert np.all(P.intensity_normalise(np.full((4, 4, 4), 7.0)) == 0)
    assert P.slices_resize(vol, P.MRI_SLICE_SIZE).shape == (160, 160, 8)
    assert P.slices_resize(np.zeros((81, 50, 40)), P.TRUS_FRAME_SIZE, axis=0).shape == (81, 118, 88)
    with pytest.raises(ValueError, match="unknown normalisation"):
        P.intensity_normalise(vol, mode="nope")


def test_enhancements_change_contrast_and_reject_unknown():
    rng = np.random.default_rng(1)
    vol = rng.uniform(0, 0.3, size=(16, 16, 4)).astype(np.float32)
    eq = P.intensity_enhance(vol, ["histeq"])
    assert eq.max() > 0.9  # equalisation spreads a narrow histogram over [0, 1]
    g = P.intensity_enhance(vol, ["gamma"], gamma=0.5)
    assert np.all(g >= vol - 1e-6)
    lap = P.intensity_enhance(vol, ["laplacian"])
    assert lap.shape == vol.shape and not np.allclose(lap, vol)
    with pytest.raises(ValueError, match="unknown enhancement"):
        P.intensity_enhance(vol, ["sharpen"])


def test_resample_through_world_coordinates():
    shape = (20, 20, 20)
    mr = ball(shape, (8, 10, 10), 4).astype(np.float32)
    a_mr = np.diag([1.0, 1.0, 1.0, 1.0])
    a_us = np.diag([0.5, 0.5, 0.5, 1.0])
    a_us[:3, 3] = [0.0, 2.0, 2.0]  # world (8, 10, 10) is voxel (16, 16, 16) of the half-mm grid
    out = P.volume_resample(mr, a_mr, (32, 32, 32), a_us, order=1)
    com = np.array(np.nonzero(out > 0.5)).mean(axis=1)
    assert np.allclose(com, (16, 16, 16), atol=0.3)
    # half-mm voxels: 8 per mm³ (linear interpolation at 0.5 shrinks a small ball slightly)
    assert (out > 0.5).sum() == pytest.approx(8 * (mr > 0.5).sum(), rel=0.25)


def test_warp_with_constant_field_is_a_shift():
    vol = ball((20, 20, 20), (10, 10, 10), 4).astype(np.float32)
    u = np.zeros((3, 20, 20, 20), np.float32)
    u[1] = 2.0
    out = P.volume_warp(vol, u, order=0)
    assert np.array_equal(out[:, 3:17], vol[:, 5:19])
    with pytest.raises(ValueError, match="displacement must have shape"):
        P.volume_warp(vol, u[:, :10])


def test_random_affine_is_seeded_and_bounded():
    m1 = P.random_affine(np.random.default_rng(3), (20, 20, 20))
    m2 = P.random_affine(np.random.default_rng(3), (20, 20, 20))
    assert np.array_equal(m1, m2)
    s = np.linalg.svd(m1[:3, :3], compute_uv=False)
    assert np.all((s > 0.85) & (s < 1.15))
    vol = ball((20, 20, 20), (10, 10, 10), 5).astype(np.float32)
    out = P.affine_apply(vol, m1, order=0)
    assert out.shape == vol.shape and 0.6 < out.sum() / vol.sum() < 1.6


def test_nifti_roundtrip_and_deepreg_split(tmp_path):
    aff = np.diag([0.8, 0.8, 2.0, 1.0])
    img = np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)
    iio.volume_save(tmp_path / "img.nii.gz", img, aff)
    back, back_aff = iio.volume_load(tmp_path / "img.nii.gz")
    assert np.allclose(back, img) and np.allclose(back_aff, aff)
    lab4 = np.zeros((6, 7, 8, 3))
    lab4[1:5, 1:5, 1:5, 0] = 1
    lab4[2, 2, 2, 1] = 1
    lab4[3, 3, 3, 2] = 1
    iio.volume_save(tmp_path / "lab.nii.gz", lab4, aff)
    gland, _ = iio.label_load(tmp_path / "lab.nii.gz")
    lm, _ = iio.landmarks_load(tmp_path / "lab.nii.gz")
    assert gland.sum() == 64 and lm[2, 2, 2] == 1 and lm[3, 3, 3] == 2 and lm.sum() == 3
    with pytest.raises(ValueError, match=r"\(X, Y, Z, C\)"):
        iio.deepreg_label_split(np.zeros((4, 4, 4)))
    with pytest.raises(FileNotFoundError):
        iio.volume_load(tmp_path / "missing.nii.gz")
    (tmp_path / "bad.nii").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="not a readable NIfTI"):
        iio.volume_load(tmp_path / "bad.nii")


def test_deepreg_shared_case_loads(shared_data):
    d = shared_data / "deepreg-simulated-mrus"
    gland, _ = iio.label_load(d / "case000025_fixed_labels.nii.gz")
    lm, _ = iio.landmarks_load(d / "case000025_moving_labels.nii.gz")
    assert gland.shape == (44, 59, 41) and gland.any()
    assert set(np.unique(lm)) == {0, 1, 2}
