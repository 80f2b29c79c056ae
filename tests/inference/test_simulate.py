"""inference.simulate: geometry, determinism, the ground-truth field, the writers (all SYNTHETIC data)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from inference import io as sio
from inference import metrics
from inference import simulate as sim
from inference.manifest import MANIFEST_COLUMNS
from inference.preprocess import volume_warp
from inference.simulate import LesionSpec, SimulatedPair, simulate_pair
from inference.simulate import dataset as sim_dataset
from inference.simulate.fields import rotation

# A NaN or overflow in the image formation shows up as a RuntimeWarning: make it fail.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

SEED = 11
LEFT_PZ = LesionSpec(side="left", zone="pz", radius_mm=6.0, conspicuity=1.0)


@pytest.fixture(scope="module")
def pair() -> SimulatedPair:
    return simulate_pair(seed=SEED, lesions=[LEFT_PZ], n_landmarks=5)


@pytest.fixture(scope="module")
def yale_source(shared_data: Path) -> sim.SimSource:
    sources = sim.sim_sources_load(shared_data / "yale-prostate-t2")
    assert [s.name for s in sources] == ["prostate_T2_1"]
    return sources[0]


def _centroids_world(labels: np.ndarray, affine: np.ndarray) -> dict[int, np.ndarray]:
    ids = [int(k) for k in np.unique(labels) if k > 0]
    cents = ndimage.center_of_mass(np.ones(labels.shape), labels, ids)
    return {k: affine[:3, :3] @ np.asarray(c) + affine[:3, 3] for k, c in zip(ids, cents)}


def _tre_world(p: SimulatedPair) -> tuple[float, float]:
    """Mean landmark distance (mm) before, and after carrying each TRUS centroid by u into MR world."""
    # Ground truth lives in the MR frame: the TRUS grid's affine there is ``us_affine_mr``.
    a_us = p.us_affine_mr
    mr = _centroids_world(p.mr_landmarks, p.mr_affine)
    us = _centroids_world(p.us_landmarks, a_us)
    assert set(mr) == set(us)
    before, after = [], []
    for k in mr:
        vox = np.linalg.solve(a_us, np.r_[us[k], 1.0])[:3]
        u = [
            ndimage.map_coordinates(p.displacement[c], vox.reshape(3, 1), order=1)[0]
            for c in range(3)
        ]
        carried = a_us[:3, :3] @ (vox + np.asarray(u)) + a_us[:3, 3]
        before.append(np.linalg.norm(us[k] - mr[k]))
        after.append(np.linalg.norm(carried - mr[k]))
    return float(np.mean(before)), float(np.mean(after))


def _check_pair_geometry(p: SimulatedPair) -> None:
    assert p.synthetic is True
    assert p.us.shape == sim.US_SHAPE and p.us.dtype == np.float32
    assert p.mr.dtype == np.float32 and p.mr.ndim == 3
    assert np.allclose(np.linalg.norm(p.us_affine[:3, :3], axis=0), sim.US_SPACING)
    for arr in (p.us_label, p.us_landmarks, p.us_fov):
        assert arr.shape == p.us.shape and arr.dtype == np.uint8
    for arr in (p.mr_label, p.mr_landmarks):
        assert arr.shape == p.mr.shape and arr.dtype == np.uint8
    assert p.displacement.shape == (3, *p.us.shape) and p.displacement.dtype == np.float32
    assert p.mr_affine.shape == (4, 4) and p.us_affine.shape == (4, 4)
    assert np.isfinite(p.mr).all() and np.isfinite(p.us).all() and np.isfinite(p.displacement).all()
    # Labels are non-empty, landmarks 1..K on both sides, and everything lies inside the fan.
    k = len(p.landmark_names)
    assert 3 <= k <= 6
    assert set(np.unique(p.mr_landmarks)) == set(range(k + 1))
    assert set(np.unique(p.us_landmarks)) == set(range(k + 1))
    assert p.mr_label.sum() > 5000 and p.us_label.sum() > 5000
    fov = p.us_fov > 0
    assert 0.5 < fov.mean() < 0.98
    assert fov[p.us_label > 0].mean() > 0.999
    assert fov[p.us_landmarks > 0].all()
    assert (p.us[~fov] == 0).all()
    assert p.us.min() >= 0 and p.us.max() <= 255
    # Gland volumes agree in mm³ (the deformation compresses, it does not create tissue).
    v_mr = p.mr_label.sum() * abs(np.linalg.det(p.mr_affine[:3, :3]))
    v_us = p.us_label.sum() * abs(np.linalg.det(p.us_affine[:3, :3]))
    assert 0.8 < v_us / v_mr < 1.25


def test_phantom_pair_geometry(pair: SimulatedPair) -> None:
    _check_pair_geometry(pair)
    assert pair.source == "phantom"
    assert len(pair.landmark_names) == 5
    assert "lesion1" in pair.landmark_names  # a visible lesion is preferred as a landmark


def test_same_seed_same_pair_other_seed_differs(pair: SimulatedPair) -> None:
    again = simulate_pair(seed=SEED, lesions=[LEFT_PZ], n_landmarks=5)
    for name in ("mr", "mr_affine", "mr_label", "mr_landmarks", "us", "us_affine", "us_label"):
        assert np.array_equal(getattr(pair, name), getattr(again, name)), name
    assert np.array_equal(pair.displacement, again.displacement)
    assert pair.landmark_names == again.landmark_names and pair.params == again.params
    other = simulate_pair(seed=SEED + 1, lesions=[LEFT_PZ], n_landmarks=5)
    assert not np.array_equal(pair.displacement, other.displacement)
    assert not np.array_equal(pair.us, other.us)


def test_ground_truth_field_maps_mr_landmarks_onto_trus(pair: SimulatedPair) -> None:
    before, after = _tre_world(pair)
    assert before > 3.0
    assert after < 0.5
    assert after < 0.1 * before


def test_ground_truth_field_follows_the_displacement_convention(pair: SimulatedPair) -> None:
    """warped(p) = mr_on_us(p + u(p)) with the team's resampler, warper and metrics."""
    spacing = metrics.spacing_from_affine(pair.us_affine)
    on_us_lm = sim.mr_resample_to_us(pair, pair.mr_landmarks, order=0)
    tre_before = metrics.tre(pair.us_landmarks, on_us_lm, None, spacing)["tre_mean"]
    tre_after = metrics.tre(pair.us_landmarks, on_us_lm, pair.displacement, spacing)["tre_mean"]
    assert tre_after < 0.6 < 3.0 < tre_before
    on_us_gland = sim.mr_resample_to_us(pair, pair.mr_label, order=0).astype(np.float32)
    warped = volume_warp(on_us_gland, pair.displacement, order=0)
    dsc_before = metrics.dice(on_us_gland, pair.us_label)
    dsc_after = metrics.dice(warped > 0.5, pair.us_label)
    assert dsc_after > 0.95 > dsc_before + 0.1
    assert metrics.folding_fraction(pair.displacement) == 0.0


def test_zero_deformation_gives_zero_field_and_matching_anatomy() -> None:
    """With every amplitude at 0 the two grids see the same world: an independent check of T."""
    p = simulate_pair(seed=5, lesions=[], deformation_scale=0.0)
    assert np.abs(p.displacement).max() < 1e-3
    on_us = sim.mr_resample_to_us(p, p.mr_label, order=0)
    assert metrics.dice(on_us, p.us_label) > 0.93
    mr = _centroids_world(p.mr_landmarks, p.mr_affine)
    us = _centroids_world(p.us_landmarks, p.us_affine_mr)
    assert max(np.linalg.norm(mr[k] - us[k]) for k in mr) < 0.7
    assert p.lesion_side == "none" and p.lesions == ()


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(*[st.integers(2, 9)] * 3),
    angles=st.tuples(*[st.floats(-3.2, 3.2)] * 3),
    spacing=st.tuples(*[st.floats(0.3, 4.0)] * 3),
    seed=st.integers(0, 2**16),
)
def test_volume_to_grid_onto_its_own_grid_is_identity(
    shape: tuple[int, int, int],
    angles: tuple[float, float, float],
    spacing: tuple[float, float, float],
    seed: int,
) -> None:
    affine = np.eye(4)
    affine[:3, :3] = rotation(np.asarray(angles)) @ np.diag(spacing)
    affine[:3, 3] = np.random.default_rng(seed).uniform(-50, 50, 3)
    labels = np.random.default_rng(seed).integers(0, 7, shape).astype(np.uint8)
    out = sim.volume_to_grid(labels, affine, shape=shape, target_affine=affine, order=0)
    assert out.dtype == np.uint8 and np.array_equal(out, labels)


def test_lesion_on_the_requested_side_and_dark_on_t2(pair: SimulatedPair) -> None:
    assert pair.lesion_side == "left" and len(pair.lesions) == 1
    gland_c = _centroids_world(pair.mr_label, pair.mr_affine)[1]
    lesion_c = np.asarray(pair.lesions[0]["center_world"])
    assert lesion_c[0] < gland_c[0] - 2.0  # RAS+: the patient's left is −x
    k = pair.landmark_names.index("lesion1") + 1
    lesion_t2 = pair.mr[pair.mr_landmarks == k].mean()
    assert lesion_t2 < 0.7 * np.median(pair.mr[pair.mr_label > 0])


def test_no_lesion_when_asked_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_landmarks"):
        simulate_pair(seed=0, n_landmarks=7)
    with pytest.raises(ValueError, match="side"):
        LesionSpec(side="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="radius_mm"):
        LesionSpec(side="left", radius_mm=40.0)
    with pytest.raises(ValueError, match="us_shape"):
        simulate_pair(seed=0, us_shape=(8, 8, 8))


def test_fan_mask_shape() -> None:
    fan = sim.us_fan_mask()
    assert fan.shape == sim.US_SHAPE
    # The sector widens with depth and the probe side is cut.
    width = fan[:, :, sim.US_SHAPE[2] // 2].sum(axis=0)
    assert width[5] < width[40] <= sim.US_SHAPE[0]
    assert fan[:, 0].sum() < fan[:, 60].sum()


def test_write_pair_deepreg_round_trip(pair: SimulatedPair, tmp_path: Path) -> None:
    files = sim.write_pair_deepreg(
        pair, out_dir=tmp_path, name="case000001", with_displacement=True
    )
    assert set(files) == {
        "moving_images",
        "fixed_images",
        "moving_labels",
        "fixed_labels",
        "displacements",
    }
    fixed, f_aff = sio.volume_load(tmp_path / files["fixed_images"])
    moving, m_aff = sio.volume_load(tmp_path / files["moving_images"])
    assert fixed.shape == moving.shape == pair.us.shape
    assert np.allclose(f_aff, pair.us_affine) and np.allclose(m_aff, pair.us_affine)
    lab = np.asarray(nib.load(str(tmp_path / files["fixed_labels"])).dataobj)
    assert lab.shape == (*pair.us.shape, len(pair.landmark_names) + 1)
    gland, landmarks = sio.deepreg_label_split(lab)
    assert np.array_equal(gland, pair.us_label)
    assert np.array_equal(landmarks, pair.us_landmarks)
    mov_lm, _ = sio.landmarks_load(tmp_path / files["moving_labels"])
    assert set(np.unique(mov_lm)) == set(range(len(pair.landmark_names) + 1))
    disp = np.asarray(nib.load(str(tmp_path / files["displacements"])).dataobj)
    assert np.allclose(np.moveaxis(disp, -1, 0), pair.displacement)


def test_write_dataset_layout_and_failure_leaves_nothing(
    pair: SimulatedPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_pair(**kwargs: object) -> SimulatedPair:
        calls.append(kwargs)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return pair

    monkeypatch.setattr(sim_dataset, "simulate_pair", fake_pair)
    tmp_path = tmp_path / "work"  # tmp_path itself also holds the autouse MEDIA_ROOT
    out = sim.write_dataset(tmp_path / "ds", n_pairs=2, seed=4, moving_grid="own")
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["synthetic"] is True and len(meta["pairs"]) == 2
    assert [c["seed"] for c in calls] == [4 * 100_003, 4 * 100_003 + 1]
    assert all(e["synthetic"] for e in meta["pairs"])
    assert not (out / "displacements").exists()  # only on request
    for role in ("moving_images", "fixed_images", "moving_labels", "fixed_labels"):
        assert sorted(p.name for p in (out / role).iterdir()) == [
            "case000000.nii.gz",
            "case000001.nii.gz",
        ]
    mr, _ = sio.volume_load(out / "moving_images" / "case000000.nii.gz")
    assert mr.shape == pair.mr.shape  # moving_grid="own" keeps the MR grid
    # Existing non-empty output: refused, untouched.
    with pytest.raises(FileExistsError, match="not an empty folder"):
        sim.write_dataset(out, n_pairs=1, seed=0)
    # A failure midway (third call) leaves neither the output nor a temporary folder.
    with pytest.raises(RuntimeError, match="boom"):
        sim.write_dataset(tmp_path / "ds2", n_pairs=2, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sim.write_dataset(tmp_path / "ds3", n_pairs=1, seed=0, yale_dir=tmp_path / "missing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_cli_dataset_real_pair(tmp_path: Path) -> None:
    rc = sim.main(["dataset", "--out", str(tmp_path / "d"), "--pairs", "1", "--seed", "3"])
    assert rc == 0
    meta = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert meta["synthetic"] is True and meta["pairs"][0]["source"] == "phantom"
    fixed, f_aff = sio.volume_load(tmp_path / "d" / "fixed_images" / "case000000.nii.gz")
    moving, m_aff = sio.volume_load(tmp_path / "d" / "moving_images" / "case000000.nii.gz")
    # The clinical way: the MR on its own grid in scanner coordinates, the TRUS in the probe's frame.
    assert fixed.shape == sim.US_SHAPE and moving.shape == sim.MR_SHAPE
    assert np.allclose(f_aff[:3, 3], 0.0) and not np.allclose(m_aff, f_aff)
    assert meta["frame"] == "own" and meta["pairs"][0]["params"]["frame"] == "own"
    assert sim.main(["dataset", "--out", str(tmp_path / "d"), "--pairs", "1"]) == 2


# --- demo cohort ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    manifest = sim.write_demo_cohort(root / "cohort", n_cases=4, seed=0)
    assert manifest == root / "cohort" / "manifest.csv"
    return root / "cohort"


def _rows(demo_dir: Path) -> list[dict[str, str]]:
    with open(demo_dir / "manifest.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_demo_manifest_columns_and_values(demo_dir: Path) -> None:
    with open(demo_dir / "manifest.csv", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == list(MANIFEST_COLUMNS)
    rows = _rows(demo_dir)
    assert len(rows) == 4
    assert len({r["case_code"] for r in rows}) == 4
    gleason = {0: "", 1: "3+3", 2: "3+4", 3: "4+3", 4: "4+4", 5: "4+5"}
    for r in rows:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", r["case_code"])
        assert r["synthetic"] == "true"
        assert 18 <= int(r["age"]) <= 120
        pirads, isup = int(r["reference_pirads"]), int(r["isup_grade"])
        assert 1 <= pirads <= 5 and 0 <= isup <= 5
        assert r["cspca"] == ("yes" if isup >= 2 else "no")
        assert r["gleason"] == gleason[isup]
        info = json.loads((demo_dir / r["case_code"] / "simulation.json").read_text())
        assert info["synthetic"] is True
        sides = {les["side"] for les in info["lesions"]}
        if pirads <= 2:
            assert not sides and isup == 0
        else:
            assert sides
        if isup == 0:
            assert r["lesion_side"] == "none"
        else:
            expected = "bilateral" if len(sides) == 2 else next(iter(sides))
            assert r["lesion_side"] == expected
    assert {r["cspca"] for r in rows} == {"yes", "no"}  # a reader study needs both classes


def test_demo_files_load_with_matching_grids(demo_dir: Path) -> None:
    for r in _rows(demo_dir):
        mr, mr_aff = sio.volume_load(demo_dir / r["mr_t2"])
        us, us_aff = sio.volume_load(demo_dir / r["trus"])
        assert us.shape == sim.US_SHAPE
        for col, ref_shape, ref_aff in (
            ("mr_label", mr.shape, mr_aff),
            ("mr_landmarks", mr.shape, mr_aff),
            ("trus_label", us.shape, us_aff),
            ("trus_landmarks", us.shape, us_aff),
        ):
            arr, aff = sio.landmarks_load(demo_dir / r[col])
            assert arr.shape == ref_shape and np.allclose(aff, ref_aff, atol=1e-4), col
        mr_lm, _ = sio.landmarks_load(demo_dir / r["mr_landmarks"])
        us_lm, _ = sio.landmarks_load(demo_dir / r["trus_landmarks"])
        assert set(np.unique(mr_lm)) == set(np.unique(us_lm))
        assert 4 <= len(np.unique(us_lm)) <= 7


def test_demo_manifest_passes_the_importer(demo_dir: Path) -> None:
    """The cohort importer (registration.importing) reads every row without an error."""
    # Imported, not importorskip: a broken importer must fail this test, not skip it.
    from registration.importing.run import cases_iterate

    notes: list[str] = []
    items = list(cases_iterate(root=demo_dir, salt="t", notes=notes))
    assert len(items) == 4
    for item in items:
        assert item.errors == []
        loaded = item.load()
        assert loaded.fields["synthetic"] is True


def test_demo_refuses_non_empty_output(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"  # tmp_path itself also holds the autouse MEDIA_ROOT
    tmp_path.mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        sim.write_demo_cohort(tmp_path / "c", n_cases=1, seed=0)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    with pytest.raises(ValueError, match="n_cases"):
        sim.write_demo_cohort(tmp_path / "d", n_cases=0, seed=0)


# --- real anatomy (Yale T2 + gland mask) ------------------------------------------------------


def test_yale_source_pair(yale_source: sim.SimSource) -> None:
    lesion = LesionSpec(side="right", zone="pz", radius_mm=5.0, conspicuity=1.0)
    p = simulate_pair(seed=2, source=yale_source, lesions=[lesion])
    _check_pair_geometry(p)
    assert p.source == "prostate_T2_1"
    assert p.mr.shape == yale_source.t2.shape == (180, 180, 79)
    assert np.array_equal(p.mr_affine, yale_source.affine)
    assert np.array_equal(p.mr_label, yale_source.mask)
    # The real T2 is kept except inside the inserted (darker) lesion.
    changed = p.mr != yale_source.t2
    assert 0 < changed.mean() < 0.01
    assert (p.mr[changed] < yale_source.t2[changed]).all()
    gland_c = _centroids_world(p.mr_label, p.mr_affine)[1]
    assert p.lesions[0]["center_world"][0] > gland_c[0] + 2.0  # right is +x in RAS+
    assert p.lesion_side == "right"
    before, after = _tre_world(p)
    assert after < 0.5 and after < 0.1 * before
    assert metrics.folding_fraction(p.displacement) == 0.0


def test_trus_in_its_own_frame_and_shared_frame_agree_on_anatomy() -> None:
    """The default TRUS affine is the probe's (origin 0, tilted ≤ 20° per axis against the MR axes);
    ``frame="shared"`` puts the same grid in the MR frame; the images are the same."""
    own = simulate_pair(seed=11, lesions=[], n_landmarks=3)
    shared = simulate_pair(seed=11, lesions=[], n_landmarks=3, frame="shared")
    assert np.allclose(own.us_affine, np.diag([sim.US_SPACING] * 3 + [1.0]))
    assert own.params["frame"] == "own" and shared.params["frame"] == "shared"
    tilt = np.asarray(own.params["probe_tilt_deg"])
    assert np.all(np.abs(tilt) <= 20.0) and np.abs(tilt).max() > 1.0
    f = np.asarray(own.params["frame_to_mr_world"])
    assert np.allclose(f @ own.us_affine, own.us_affine_mr, atol=1e-5)
    assert np.allclose(shared.us_affine, shared.us_affine_mr)
    with pytest.raises(ValueError, match="frame"):
        simulate_pair(seed=0, frame="other")  # type: ignore[arg-type]
