"""Registration training pairs misaligned like segmented labels leave them (inference.reg_train_data).

All pairs here are SIMULATED (inference.simulate); the real-gland test uses PROMISE12 training glands.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference import metrics as M
from inference import reg_train_data as R
from inference import simulate
from inference.data import RawPair, pair_prepare
from inference.geometry import frame_align

SMALL_US = (40, 56, 44)


def _raw(sp: simulate.SimulatedPair) -> RawPair:
    return RawPair(
        "p",
        sp.mr,
        sp.mr_affine,
        sp.us,
        sp.us_affine,
        sp.mr_label,
        sp.us_label,
        sp.mr_landmarks,
        sp.us_landmarks,
    )


def _dsc_tre(p: object) -> tuple[float, float]:
    dsc = M.dice(p.moving_label > 0.5, p.fixed_label > 0.5)  # type: ignore[attr-defined]
    tre = M.tre_points(p.fixed_points, p.moving_points, None, p.spacing)  # type: ignore[attr-defined]
    return dsc, tre["tre_mean"]


@pytest.fixture(scope="module")
def phantom_pair() -> simulate.SimulatedPair:
    return simulate.simulate_pair(seed=3, us_shape=SMALL_US, us_spacing=1.6, n_landmarks=4)


def test_perturbation_bounds_and_identity():
    rng = np.random.default_rng(0)
    c = np.array([10.0, -5.0, 30.0])
    assert np.array_equal(R.perturbation(rng, c, {"identity": 1.0}), np.eye(4))
    spec = {"rotation_deg": 3.0, "translation_mm": 2.0, "scaling": 0.03, "clip": 2.0, "identity": 0}
    for _ in range(50):
        p = R.perturbation(rng, c, spec)
        shift = p[:3, :3] @ c + p[:3, 3] - c  # the centre moves by the translation only
        assert np.all(np.abs(shift) <= 2.0 * 2.0 + 1e-9)
        sv = np.linalg.svd(p[:3, :3], compute_uv=False)
        assert np.all(sv <= np.exp(0.06) + 1e-9) and np.all(sv >= np.exp(-0.06) - 1e-9)
        assert np.linalg.det(p[:3, :3]) > 0


def test_truth_alignment_is_accurate_and_perturbation_misaligns(phantom_pair):
    raw = _raw(phantom_pair)
    w = R.truth_alignment(phantom_pair)
    good = R.prepare_with_world(raw, w, shape=(24, 32, 24))
    dsc, tre = _dsc_tre(good)
    assert dsc > 0.9 and tre < 1.5
    a = raw.us_affine
    centre = a[:3, :3] @ np.argwhere(raw.us_label > 0).mean(0) + a[:3, 3]
    spec = {"rotation_deg": 0.0, "translation_mm": 3.0, "scaling": 0.0, "clip": 3.0, "identity": 0}
    bad = R.prepare_with_world(
        raw, w @ R.perturbation(np.random.default_rng(1), centre, spec), shape=(24, 32, 24)
    )
    dsc_bad, tre_bad = _dsc_tre(bad)
    assert dsc_bad < dsc - 0.03 and tre_bad > tre + 1.0


def test_residual_field_is_the_truth_and_follows_augmentation(phantom_pair):
    import torch
    from monai.networks.blocks import Warp

    from inference.train_registration import _augment, _batch

    raw = _raw(phantom_pair)
    a = raw.us_affine
    centre = a[:3, :3] @ np.argwhere(raw.us_label > 0).mean(0) + a[:3, 3]
    world = R.truth_alignment(phantom_pair) @ R.perturbation(
        np.random.default_rng(2), centre, {"identity": 0.0, "translation_mm": 3.0}
    )
    shape = (24, 32, 24)
    pair = R.TrainPair(
        **vars(R.prepare_with_world(raw, world, shape=shape)),
        displacement=R.residual_field(phantom_pair, world, shape),
    )
    before = _dsc_tre(pair)
    tre_truth = M.tre_points(pair.fixed_points, pair.moving_points, pair.displacement, pair.spacing)
    assert tre_truth["tre_mean"] < 1.0 < before[1]
    warp = Warp(mode="bilinear", padding_mode="border")
    batch = _batch([pair, pair], [0, 1], torch.device("cpu"))
    aug = _augment(
        batch, {"rotation_deg": 5.0, "translation": 0.05, "scaling": 0.05}, torch.Generator()
    )

    def dsc(b: dict, field: torch.Tensor) -> float:
        warped = warp(b["moving_label"], field)[1, 0].numpy() > 0.5
        return M.dice(warped, b["fixed_label"][1, 0].numpy() > 0.5)

    assert dsc(batch, batch["displacement"]) > max(before[0] + 0.03, 0.9)
    assert dsc(aug, aug["displacement"]) > dsc(aug, batch["displacement"]) + 0.03
    assert dsc(aug, aug["displacement"]) > 0.9


def test_prepare_with_world_matches_pair_prepare(phantom_pair):
    raw = _raw(phantom_pair)
    ref = pair_prepare(raw, shape=(24, 32, 24))
    w = frame_align(
        mr_label=raw.mr_label,
        mr_affine=raw.mr_affine,
        us_label=raw.us_label,
        us_affine=raw.us_affine,
    ).matrix
    out = R.prepare_with_world(raw, w, shape=(24, 32, 24))
    for attr in ("moving", "fixed", "moving_label", "fixed_label"):
        np.testing.assert_allclose(getattr(out, attr), getattr(ref, attr), atol=1e-5)
    assert out.spacing == pytest.approx(ref.spacing)
    for k, v in ref.moving_points.items():
        np.testing.assert_allclose(out.moving_points[k], v, atol=1e-6)


def test_cache_round_trip_and_resize(tmp_path, phantom_pair):
    pair = R.prepare_with_world(
        _raw(phantom_pair), R.truth_alignment(phantom_pair), shape=(24, 32, 24)
    )
    R.pairs_save(tmp_path / "c.npz", [pair, pair])
    back = R.pairs_load(tmp_path / "c.npz")
    assert len(back) == 2 and back[1].name == pair.name and back[0].displacement is None
    np.testing.assert_array_equal(back[0].moving, pair.moving)
    assert back[0].fixed_points.keys() == pair.fixed_points.keys()
    small = R.pair_resize(back[0], (12, 16, 12))
    assert small.moving.shape == (12, 16, 12)
    assert small.spacing[0] == pytest.approx(pair.spacing[0] * 23 / 11)


def test_heldout_glands_are_refused():
    with pytest.raises(ValueError, match="HELDOUT"):
        R.sources_select({"val_glands": ["train04"]}, "val")
    with pytest.raises(ValueError, match="HELDOUT"):
        R.sources_select({"simulate_source": "promise12:train01,train09"}, "train")


def test_real_gland_pairs_split_by_gland(shared_data):
    data = {
        "simulate_source": "promise12:train01,train02,train03",
        "val_glands": ["train03"],
        "deformation_scale": [1.0, 1.2],
        "perturb": {"identity": 0.0},
    }
    names = [s.name for s in R.sources_select(data, "train")]
    assert names == ["promise12-train01", "promise12-train02"]
    pairs = R.perturbed_pairs(data, [7], "val", (16, 24, 16))
    assert pairs[0].name.startswith("sim-promise12-promise12-train03-7")
    assert pairs[0].moving.shape == (16, 24, 16) and pairs[0].fixed_points
    assert pairs[0].displacement is not None and pairs[0].displacement.shape == (3, 16, 24, 16)
    assert "PROMISE12 training glands + Yale" in R.perturbed_describe(
        {**data, "train_seeds": [0, 2], "val_seeds": [7, 8]}
    )
