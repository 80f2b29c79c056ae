"""DICOM series ↔ volume: geometry on real files, round trips, and refusals that name the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid

from registration.dicom.geometry import LPS_TO_RAS, corners_world
from registration.dicom.read import DicomInputError, series_load
from registration.dicom.seg import seg_load_onto
from registration.dicom.write import pixels_encode, series_write

from .conftest import PROSTATEX_ADC, PROSTATEX_T2, QIN_ADC, QIN_SEG


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def _write(
    folder: Path, volume: np.ndarray, affine: np.ndarray, modality: str = "MR"
) -> list[Path]:
    out = series_write(
        folder,
        volume=volume,
        affine=affine,
        modality=modality,
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        sop_uids=[generate_uid() for _ in range(volume.shape[2])],
        patient_name="TEST",
        patient_id="TEST",
    )
    return [p for _, p in out]


def test_prostatex_t2_geometry_from_positions(shared_data: Path) -> None:
    files = _files(shared_data / PROSTATEX_T2)
    loaded = series_load(files)
    assert loaded.volume.shape == (384, 384, 19)
    # Voxel (i, j, k) = slice k, row j, column i; each slice's position is voxel (0, 0, k).
    for k, ds in enumerate(loaded.headers):
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        world_ras = loaded.affine @ np.array([0, 0, k, 1.0])
        assert np.allclose(LPS_TO_RAS[:3, :3] @ ipp, world_ras[:3], atol=1e-6)
        pixels = ds.pixel_array
        assert np.array_equal(loaded.volume[:, :, k], pixels.T.astype(np.float32))
    spacing = np.linalg.norm(loaded.affine[:3, :3], axis=0)
    assert np.allclose(spacing, [0.5, 0.5, 3.0], atol=1e-3)
    # Oblique (~18°) orientation is kept, not snapped to the axes.
    k_dir = loaded.affine[:3, 2] / spacing[2]
    tilt = np.degrees(np.arccos(abs(k_dir[2])))
    assert 15 < tilt < 21
    # Sorting follows the slice normal, not file names or InstanceNumber.
    along = [
        np.array([float(v) for v in ds.ImagePositionPatient])
        @ np.cross(
            [float(v) for v in ds.ImageOrientationPatient[:3]],
            [float(v) for v in ds.ImageOrientationPatient[3:]],
        )
        for ds in loaded.headers
    ]
    assert np.all(np.diff(along) > 0)


def test_round_trip_real_series_within_001_mm(shared_data: Path, tmp_path: Path) -> None:
    for rel in (PROSTATEX_T2, PROSTATEX_ADC, QIN_ADC):
        loaded = series_load(_files(shared_data / rel))
        written = _write(tmp_path / rel.replace("/", "_"), loaded.volume, loaded.affine)
        again = series_load(written)
        diff = np.abs(
            corners_world(again.affine, again.volume.shape)
            - corners_world(loaded.affine, loaded.volume.shape)
        )
        assert diff.max() < 0.01, rel
        assert np.array_equal(again.volume, loaded.volume), rel  # integer data are stored exactly


@settings(max_examples=15, deadline=None)
@given(
    angles=st.tuples(*[st.floats(-np.pi, np.pi) for _ in range(3)]),
    spacing=st.tuples(*[st.floats(0.2, 4.0) for _ in range(3)]),
    origin=st.tuples(*[st.floats(-300, 300) for _ in range(3)]),
    flip=st.booleans(),
)
def test_round_trip_any_affine(tmp_path_factory, angles, spacing, origin, flip) -> None:  # noqa: ANN001
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    rot = rx @ ry @ rz
    if flip:
        rot[:, 0] *= -1  # left-handed voxel axes (common in NIfTI) must survive too
    affine = np.eye(4)
    affine[:3, :3] = rot * np.array(spacing)
    affine[:3, 3] = origin
    rng = np.random.default_rng(0)
    volume = rng.normal(100, 30, size=(5, 4, 3)).astype(np.float32)
    folder = tmp_path_factory.mktemp("rt")
    again = series_load(_write(folder, volume, affine))
    # A left-handed grid comes back in slice-normal order: the same voxels, k reversed.
    expected_volume = volume[:, :, ::-1] if np.linalg.det(affine[:3, :3]) < 0 else volume
    expected_affine = affine.copy()
    if np.linalg.det(affine[:3, :3]) < 0:
        expected_affine[:3, 3] = affine[:3, 3] + 2 * affine[:3, 2]
        expected_affine[:3, 2] = -affine[:3, 2]
    assert np.abs(again.affine - expected_affine).max() < 0.01
    assert (
        np.abs(again.volume - expected_volume).max() <= (volume.max() - volume.min()) / 65535 + 1e-4
    )


def test_left_handed_affine_round_trip(tmp_path: Path) -> None:
    """NIfTI affines with det < 0 (e.g. the Yale T2) come back as the same set of voxel positions."""
    affine = np.diag([-0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = [10, -20, 30]
    volume = np.arange(4 * 3 * 5, dtype=np.float32).reshape(4, 3, 5)
    again = series_load(_write(tmp_path, volume, affine))
    world = lambda aff, shape: {tuple(np.round(p, 3)) for p in corners_world(aff, shape)}  # noqa: E731
    assert world(again.affine, volume.shape) == world(affine, volume.shape)


def test_pixels_encode_exact_for_integers_and_close_for_floats() -> None:
    ints = np.array([[[0, 1], [4095, 7]]], dtype=np.float32)
    enc = pixels_encode(ints)
    assert enc.slope == 1 and enc.intercept == 0 and not enc.signed
    neg = pixels_encode(np.array([[[-1000.0, 2.0]]]))
    assert neg.signed
    floats = np.linspace(-3.3, 1234.5, 1000).reshape(10, 10, 10)
    enc = pixels_encode(floats)
    decoded = enc.stored * enc.slope + enc.intercept
    assert np.abs(decoded - floats).max() <= enc.slope
    with pytest.raises(ValueError, match="NaN"):
        pixels_encode(np.array([[[np.nan]]]))


def test_seg_onto_referenced_series(shared_data: Path) -> None:
    series = series_load(_files(shared_data / QIN_ADC))
    label = seg_load_onto(shared_data / QIN_SEG, series)
    assert label.shape == series.volume.shape and label.dtype == np.uint8
    seg = pydicom.dcmread(shared_data / QIN_SEG)
    # Every SEG frame lands on the slice whose SOP Instance UID it references.
    n_frames = int(seg.NumberOfFrames)
    assert len(set(np.nonzero(label.sum(axis=(0, 1)))[0])) == n_frames
    assert int(label.sum()) == int(np.asarray(seg.pixel_array).astype(bool).sum())


def test_seg_refused_on_other_series(shared_data: Path) -> None:
    other = series_load(_files(shared_data / PROSTATEX_T2))
    with pytest.raises(DicomInputError, match=r"the DICOM SEG file.*does not reference"):
        seg_load_onto(shared_data / QIN_SEG, other)


# --- refusals ---------------------------------------------------------------------------------


@pytest.fixture
def t2_copy(shared_data: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "t2"
    shutil.copytree(shared_data / PROSTATEX_T2, dst)
    return dst


def _label(folder: Path, path: Path, files: list[Path] | None = None) -> str:
    """How series_load names a file: its place among the files in name order, never its name."""
    ordered = sorted(files if files is not None else _files(folder), key=str)
    return f"file {ordered.index(path) + 1} of {len(ordered)}"


def _positions(folder: Path) -> list[tuple[float, Path]]:
    out = []
    for p in _files(folder):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        out.append((float(ds.ImagePositionPatient[2]), p))
    return sorted(out)


def test_missing_slice_named(t2_copy: Path) -> None:
    middle = _positions(t2_copy)[9][1]
    middle.unlink()
    with pytest.raises(DicomInputError, match=r"missing slice"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_uneven_spacing_named(t2_copy: Path) -> None:
    p = _positions(t2_copy)[5][1]
    ds = pydicom.dcmread(p)
    normal = np.cross(
        [float(v) for v in ds.ImageOrientationPatient[:3]],
        [float(v) for v in ds.ImageOrientationPatient[3:]],
    )
    ds.ImagePositionPatient = [
        f"{float(v) + 0.8 * n:.6f}" for v, n in zip(ds.ImagePositionPatient, normal)
    ]
    ds.save_as(p)
    with pytest.raises(
        DicomInputError,
        match=rf"{_label(t2_copy, p)}.*uneven slice spacing|uneven slice spacing.*{_label(t2_copy, p)}\D",
    ):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_mixed_series_named(shared_data: Path, t2_copy: Path) -> None:
    stray = t2_copy / "zz-adc.dcm"
    shutil.copy(_files(shared_data / PROSTATEX_ADC)[0], stray)
    with pytest.raises(DicomInputError, match=rf"{_label(t2_copy, stray)}: .*mixed series"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_mixed_patients_named(t2_copy: Path) -> None:
    p = _files(t2_copy)[3]
    ds = pydicom.dcmread(p)
    ds.PatientID = "SOMEONE-ELSE"
    ds.save_as(p)
    with pytest.raises(DicomInputError, match=rf"{_label(t2_copy, p)}: .*mixed patients"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_mixed_orientation_named(t2_copy: Path) -> None:
    p = _files(t2_copy)[4]
    ds = pydicom.dcmread(p)
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.save_as(p)
    with pytest.raises(DicomInputError, match=rf"{_label(t2_copy, p)}: .*mixed orientations"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_duplicate_slice_named(t2_copy: Path) -> None:
    p = _files(t2_copy)[0]
    ds = pydicom.dcmread(p)
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(t2_copy / "dup.dcm")
    with pytest.raises(DicomInputError, match=r"duplicate slice"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_truncated_file_named(t2_copy: Path) -> None:
    p = _files(t2_copy)[2]
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(DicomInputError, match=rf"{_label(t2_copy, p)}: .*(truncated|corrupt)"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_not_dicom_named(t2_copy: Path) -> None:
    junk = t2_copy / "notes.dcm"
    junk.write_text("this is not an image")
    with pytest.raises(DicomInputError, match=rf"{_label(t2_copy, junk)}: not a DICOM file"):
        series_load(_files(t2_copy), root=t2_copy.parent)


def test_nan_voxels_named(tmp_path: Path) -> None:
    volume = np.ones((4, 4, 3), dtype=np.float32)
    files = _write(tmp_path, volume, np.eye(4))
    ds = pydicom.dcmread(files[1])
    ds.RescaleSlope = "NaN"
    ds.save_as(files[1])
    with pytest.raises(DicomInputError, match=rf"{_label(tmp_path, files[1], files)}: .*NaN"):
        series_load(files, root=tmp_path)
