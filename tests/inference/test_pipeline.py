"""register_case: contract, stages, cancellation, bad input, checkpoints, and the real Yale T2.

The TRUS side is always SIMULATED (inference.simulate or the spheres below): no real TRUS exists offline.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from inference.models import checkpoint_save
from inference.networks import RERN
from inference.pipeline import (
    RegistrationCancelled,
    RegistrationConfig,
    RegistrationResult,
    register_case,
)
from inference.registry import CheckpointError, checkpoint_resolve
from tests.inference.synthetic import ball

torch.set_num_threads(1)

SHAPE = (32, 36, 28)
AFF = np.diag([1.0, 1.0, 1.2, 1.0])


def sphere_case():
    """Synthetic pair: the MR gland is a shifted, slightly larger ball; one landmark per side."""
    us_label = ball(SHAPE, (16, 18, 14), 8)
    mr_label = ball(SHAPE, (18, 16, 15), 9)
    us = (0.2 + 0.6 * us_label + 0.05 * np.random.default_rng(0).random(SHAPE)).astype(np.float32)
    mr = (0.1 + 0.8 * mr_label).astype(np.float32)
    us_lm = ball(SHAPE, (19, 18, 14), 1.5)
    mr_lm = ball(SHAPE, (21.4, 16, 15), 1.5)
    return {
        "mr": mr,
        "mr_affine": AFF,
        "us": us,
        "us_affine": AFF,
        "mr_label": mr_label,
        "us_label": us_label,
        "mr_landmarks": mr_lm,
        "us_landmarks": us_lm,
    }


def test_initial_method_contract_and_improvement():
    stages = []
    res = register_case(
        **sphere_case(),
        config=RegistrationConfig(method="initial"),
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )
    assert isinstance(res, RegistrationResult)
    assert res.displacement.shape == (3, *SHAPE) and res.displacement.dtype == np.float32
    assert res.warped_mr.shape == SHAPE and res.mr_on_us.shape == SHAPE
    assert res.warped_mr_label is not None and res.warped_mr_label.dtype == np.uint8
    assert np.array_equal(res.affine, AFF)
    m = res.metrics
    assert m["dsc_after"] > m["dsc_before"] + 0.1
    assert m["tre_after_mean"] < m["tre_before_mean"]
    assert m["hd95_after"] < m["hd95_before"]
    assert m["folding_fraction"] == 0.0
    assert [s for s, _ in stages] == ["resample", "initial", "metrics"]
    assert stages[-1][1] == 1.0
    assert set(res.stage_seconds) == {"resample", "initial", "metrics"}
    assert res.model["name"] == "initial-alignment" and res.model["code_version"]


def test_initial_method_never_imports_torch():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from inference.pipeline import RegistrationConfig, register_case
        a = np.zeros((12, 12, 12), np.float32); a[3:9, 3:9, 3:9] = 1
        b = np.roll(a, 2, axis=0)
        r = register_case(mr=a, mr_affine=np.eye(4), us=b, us_affine=np.eye(4), mr_label=a,
                          us_label=b, config=RegistrationConfig(method="initial"))
        assert r.metrics["dsc_after"] > r.metrics["dsc_before"]
        assert "torch" not in sys.modules, "method='initial' imported torch"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cancel_between_stages_and_progress():
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 1  # let the pre-start check pass, cancel after the first stage

    with pytest.raises(RegistrationCancelled, match="resample"):
        register_case(
            **sphere_case(), config=RegistrationConfig(method="initial"), should_cancel=cancel
        )
    with pytest.raises(RegistrationCancelled, match="before it started"):
        register_case(
            **sphere_case(), config=RegistrationConfig(method="initial"), should_cancel=lambda: True
        )


def test_bad_input_messages():
    case = sphere_case()
    with pytest.raises(ValueError, match=r"mr must be a 3-D volume.*\(32, 36\)"):
        register_case(
            **{**case, "mr": case["mr"][..., 0]}, config=RegistrationConfig(method="initial")
        )
    with pytest.raises(ValueError, match=r"us_label has shape \(32, 36, 10\)"):
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


def test_no_labels_falls_back_to_scanner_alignment():
    case = sphere_case()
    case.update(mr_label=None, us_label=None)
    res = register_case(**case, config=RegistrationConfig(method="initial"))
    assert np.count_nonzero(res.displacement) == 0
    assert res.warped_mr_label is None and "dsc_after" not in res.metrics
    assert any("no gland labels" in n for n in res.notes)


def test_instance_optimisation_improves_dice_without_weights():
    res = register_case(
        **sphere_case(),
        config=RegistrationConfig(
            method="io", io_steps=25, io_downsample=1, num_threads=1, affine_init=False
        ),
    )
    init = register_case(
        **sphere_case(), config=RegistrationConfig(method="initial", affine_init=False)
    )
    assert res.metrics["dsc_after"] > init.metrics["dsc_after"]
    assert res.metrics["folding_fraction"] < 0.005
    assert res.model["name"] == "instance-optimisation"
    assert "refine" in res.stage_seconds


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
        **sphere_case(),
        config=RegistrationConfig(method="rern", checkpoint=str(path), device="cpu"),
    )
    init = register_case(**sphere_case(), config=RegistrationConfig(method="initial"))
    # zero-initialised head: the untrained network adds nothing to the initial alignment
    assert np.allclose(res.displacement, init.displacement, atol=1e-4)
    assert res.model["name"] == "RERN" and len(res.model["sha256"]) == 64
    assert res.model["synthetic_training"] is True
    with pytest.raises(CheckpointError, match="does not exist"):
        register_case(
            **sphere_case(),
            config=RegistrationConfig(method="rern", checkpoint=str(tmp_path / "no.pt")),
        )
    with pytest.raises(CheckpointError, match="no default 'rern' checkpoint"):
        checkpoint_resolve(kind="rern", directory=tmp_path)


def test_real_yale_t2_with_simulated_trus(shared_data):
    """Real T2 anatomy (Yale) paired with a SIMULATED TRUS from inference.simulate."""
    from inference.simulate import SimSource, simulate_pair

    d = shared_data / "yale-prostate-t2"
    src = SimSource.from_files(d / "prostate_T2_1.nii.gz", d / "prostate_segm_1.nii.gz")
    pair = simulate_pair(seed=3, source=src, us_shape=(54, 79, 59), us_spacing=1.2)
    kwargs = {
        "mr": pair.mr,
        "mr_affine": pair.mr_affine,
        "us": pair.us,
        "us_affine": pair.us_affine,
        "mr_label": pair.mr_label,
        "us_label": pair.us_label,
        "mr_landmarks": pair.mr_landmarks,
        "us_landmarks": pair.us_landmarks,
    }
    for cfg in (
        RegistrationConfig(method="initial"),
        RegistrationConfig(method="io", io_steps=20, num_threads=1),
    ):
        m = register_case(**kwargs, config=cfg).metrics
        assert m["dsc_after"] > m["dsc_before"], (cfg.method, m)
        assert m["tre_after_mean"] < m["tre_before_mean"], (cfg.method, m)
        assert m["folding_fraction"] < 0.005
