"""register_case: frames, one interpolation, honest metrics, failures, stages, bad input, checkpoints.

The TRUS side is always SIMULATED (inference.simulate or the ellipsoids below): no real TRUS pair
exists offline. Every pair here puts the TRUS in its OWN frame (origin near 0, tilted axes), as
a probe does: nothing may rely on the two affines sharing a frame.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import ndimage

from inference.models import checkpoint_save
from inference.networks import RERN
from inference.pipeline import (
    RegistrationCancelled,
    RegistrationConfig,
    RegistrationFailed,
    RegistrationResult,
    register_case,
)
from inference.registry import CheckpointError, checkpoint_resolve
from tests.inference.synthetic import MR_SHAPE, US_SHAPE, ellipsoid, frames_case

torch.set_num_threads(1)


def test_initial_alignment_without_a_shared_frame():
    stages = []
    res = register_case(
        **frames_case(),
        config=RegistrationConfig(method="initial"),
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )
    assert isinstance(res, RegistrationResult)
    assert res.displacement.shape == (3, *US_SHAPE) and res.displacement.dtype == np.float32
    assert res.warped_mr.shape == US_SHAPE and res.mr_initial.shape == US_SHAPE
    assert res.warped_mr_label is not None and res.warped_mr_label.dtype == np.uint8
    m = res.metrics
    assert m["dsc_initial"] > 0.9 and m["dsc_after"] == m["dsc_initial"]
    assert m["tre_initial_mean"] < 1.5  # mm; the TRUS frame was 180 mm away and tilted ~20°
    assert m["folding_fraction"] == 0.0
    assert 10 < res.model["frame_alignment"]["rotation_deg"] < 30
    assert [s for s, _ in stages] == ["initial", "metrics"] and stages[-1][1] == 1.0
    assert res.model["name"] == "initial-alignment" and res.model["code_version"]
    assert res.label_source == {"mr": "given", "us": "given"}
    assert "reference labels" in res.metrics_basis and "no ground truth" not in res.metrics_basis


@pytest.mark.parametrize("tilt", [(20.0, 0.0, 0.0), (0.0, -20.0, 0.0), (-14.0, 14.0, 14.0)])
def test_initial_alignment_holds_for_tilts_up_to_20_degrees(tilt):  # noqa: ANN001
    res = register_case(**frames_case(tilt_deg=tilt), config=RegistrationConfig(method="initial"))
    assert res.metrics["dsc_initial"] > 0.9, res.metrics
    assert res.metrics["tre_initial_mean"] < 2.0, res.metrics


def test_warped_mr_is_one_resampling_with_nothing_outside_the_mr():
    """Outputs are ONE sampling of the original MR through the composed transform, 0 outside it."""
    case = frames_case()

    def smooth(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        g = np.indices(fixed.shape, dtype=np.float32)
        return np.stack([0.8 * np.sin(g[(c + 1) % 3] / 6.0) for c in range(3)])

    res = register_case(
        **case,
        config=RegistrationConfig(method="initial", guard=False, min_dsc=0.3),
        deformable=smooth,
    )
    assert res.displacement.any()
    p = np.indices(US_SHAPE, dtype=np.float64) + res.displacement
    hom = np.vstack([p.reshape(3, -1), np.ones(p[0].size)])
    q = (np.linalg.inv(case["mr_affine"]) @ res.world @ case["us_affine"] @ hom)[:3]
    expect = ndimage.map_coordinates(case["mr"], q, order=1, mode="grid-constant", cval=0.0)
    assert np.allclose(res.warped_mr, expect.reshape(US_SHAPE), atol=1e-5)
    # Where the transform points outside the MR volume the registered MR is 0: no border streaks.
    outside = np.any((q <= -1.0) | (q >= np.array(MR_SHAPE)[:, None]), axis=0)
    assert outside.any(), "the TRUS grid should see past the MR's field of view here"
    assert np.all(res.warped_mr.reshape(-1)[outside.reshape(-1)] == 0)
    # The registered label is the same single sampling of the MR label.
    lab = ndimage.map_coordinates(case["mr_label"].astype(np.float32), q, order=1) > 0.5
    assert np.array_equal(res.warped_mr_label, lab.reshape(US_SHAPE).astype(np.uint8))


def test_initial_method_never_imports_torch():
    code = textwrap.dedent(
        """
        import sys
        from tests.inference.synthetic import frames_case
        from inference.pipeline import RegistrationConfig, register_case
        r = register_case(**frames_case(), config=RegistrationConfig(method="initial"))
        assert r.metrics["dsc_after"] > 0.9
        assert "torch" not in sys.modules, "method='initial' imported torch"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cancel_between_stages():
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the pre-start check pass, cancel after the first stage

    with pytest.raises(RegistrationCancelled, match="initial"):
        register_case(
            **frames_case(), config=RegistrationConfig(method="initial"), should_cancel=cancel
        )
    with pytest.raises(RegistrationCancelled, match="before it started"):
        register_case(
            **frames_case(),
            config=RegistrationConfig(method="initial"),
            should_cancel=lambda: True,
        )


def test_bad_input_messages():
    case = frames_case()
    with pytest.raises(ValueError, match=r"mr must be a 3-D volume.*\(40, 44\)"):
        register_case(
            **{**case, "mr": case["mr"][..., 0]}, config=RegistrationConfig(method="initial")
        )
    with pytest.raises(ValueError, match=r"us_label has shape \(36, 40, 10\)"):
        register_case(
            **{**case, "us_label": case["us_label"][..., :10]},
            config=RegistrationConfig(method="initial"),
        )
    with pytest.raises(ValueError, match="affine"):
        register_case(
            **{**case, "us_affine": np.zeros((4, 4))}, config=RegistrationConfig(method="initial")
        )
    bad = case["us"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        register_case(**{**case, "us": bad}, config=RegistrationConfig(method="initial"))
    with pytest.raises(ValueError, match="unknown method"):
        RegistrationConfig(method="magic")


def test_no_labels_and_no_segmenter_fails_clearly():
    case = {**frames_case(), "mr_label": None, "us_label": None}
    cfg = RegistrationConfig(method="initial", segment_missing=False)
    with pytest.raises(RegistrationFailed, match="different machines.*no gland label"):
        register_case(**case, config=cfg)


def test_empty_or_implausible_glands_fail_with_the_reason():
    case = frames_case()
    empty = np.zeros_like(case["us_label"])
    with pytest.raises(RegistrationFailed, match="No prostate gland in the TRUS"):
        register_case(**{**case, "us_label": empty}, config=RegistrationConfig(method="initial"))
    tiny = ellipsoid(US_SHAPE, (18, 20, 16), (3, 3, 3))
    with pytest.raises(RegistrationFailed, match="gland volumes disagree.*mL"):
        register_case(**{**case, "us_label": tiny}, config=RegistrationConfig(method="initial"))


def test_an_alignment_below_min_dsc_fails_and_says_against_what(monkeypatch):
    """A gland of the right volume but the wrong shape cannot be aligned: failed, not succeeded."""
    case = frames_case()
    wrong = ellipsoid(US_SHAPE, (18, 20, 16), (4.2, 16, 7))  # same volume, other shape
    with pytest.raises(RegistrationFailed, match=r"initial alignment failed.*reference labels"):
        register_case(
            **{**case, "us_label": wrong},
            config=RegistrationConfig(method="initial", min_dsc=0.8),
        )


def test_segmented_labels_are_labelled_so(monkeypatch):
    """Metrics computed against the pipeline's own segmentation say 'no ground truth'."""
    import inference.stages as stages

    case = frames_case()
    given = {"mri": case["mr_label"], "trus": case["us_label"]}

    def fake_segment(*, image, affine, modality, checkpoint, device_name):  # noqa: ANN001, ANN202
        # SYNTHETIC stand-in for the segmenter: returns the known gland, and one warning.
        return given[modality], {"name": "stand-in", "warnings": [f"{modality} looks odd"]}

    monkeypatch.setattr(stages, "segment_stage", fake_segment)
    res = register_case(**{**case, "us_label": None}, config=RegistrationConfig(method="initial"))
    assert res.label_source == {"mr": "given", "us": "segmented"}
    assert "against segmented labels (no ground truth)" in res.metrics_basis
    assert "TRUS gland segmented" in res.metrics_basis
    assert res.warnings == ["trus looks odd"]


def test_instance_optimisation_never_ends_worse_than_it_started():
    res = register_case(
        **frames_case(),
        config=RegistrationConfig(method="io", io_steps=25, io_downsample=1, num_threads=1),
    )
    m = res.metrics
    assert m["dsc_after"] >= m["dsc_initial"]
    assert m["folding_fraction"] < 0.005
    assert res.model["name"] == "instance-optimisation" and "refine" in res.stage_seconds


def test_guard_drops_a_deformation_that_lowers_the_dice():
    def harmful(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        u = np.zeros((3, *fixed.shape), dtype=np.float32)
        u[0] += 4.0  # a 4-voxel shift: worse than the initial alignment
        return u

    res = register_case(
        **frames_case(), config=RegistrationConfig(method="initial"), deformable=harmful
    )
    assert res.model.get("guard_reverted") and not res.displacement.any()
    assert any("initial alignment was kept" in n for n in res.notes)
    with pytest.raises(RegistrationFailed, match="Dice after registration"):
        register_case(
            **frames_case(),
            config=RegistrationConfig(method="initial", guard=False, min_dsc=0.75),
            deformable=harmful,
        )


def test_rern_checkpoint_plumbing(tmp_path):
    net = RERN(channels=(4, 8))
    path = checkpoint_save(
        tmp_path / "tiny.pt",
        model=net,
        architecture="RERN",
        arch_config={"channels": [4, 8]},
        config={},
        training_data={"synthetic": True, "description": "untrained"},
        validation={},
        input_shape=[16, 16, 16],
    )
    res = register_case(
        **frames_case(),
        config=RegistrationConfig(method="rern", checkpoint=str(path), device="cpu"),
    )
    # zero-initialised head: the untrained network adds nothing to the initial alignment
    assert np.allclose(res.displacement, 0.0, atol=1e-4)
    assert res.model["name"] == "RERN" and len(res.model["sha256"]) == 64
    assert res.model["synthetic_training"] is True
    with pytest.raises(CheckpointError, match="does not exist"):
        register_case(
            **frames_case(),
            config=RegistrationConfig(method="rern", checkpoint=str(tmp_path / "no.pt")),
        )
    with pytest.raises(CheckpointError, match="no default 'rern' checkpoint"):
        checkpoint_resolve(kind="rern", directory=tmp_path)
