"""Every bad input gets a message naming the row/column or file, and leaves nothing behind.

Most cases use small synthetic NIfTI volumes (labelled synthetic) so they stay fast; the DICOM
problems use copies of the real ProstateX series.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from django.conf import settings as dj_settings

from registration.importing.run import cohort_import
from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun

from .conftest import PROSTATEX_T2, copy_in, manifest_write, media_files

pytestmark = pytest.mark.django_db


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path.name


def _synthetic_case(folder: Path, *, code: str = "S01", **overrides: str) -> dict[str, str]:
    """A tiny synthetic (random) T2 volume; ``overrides`` replace manifest values."""
    rng = np.random.default_rng(1)
    _nifti(folder / f"{code}_t2.nii.gz", rng.normal(100, 10, (8, 8, 4)).astype(np.float32))
    row = {
        "case_code": code,
        "reference_pirads": "3",
        "mr_t2": f"{code}_t2.nii.gz",
        "synthetic": "true",
    }
    row.update(overrides)
    return row


def _assert_nothing_stored() -> None:
    assert Cohort.objects.count() == 0
    assert Case.objects.count() == 0
    assert ImageSeries.objects.count() == 0
    assert DicomInstance.objects.count() == 0
    assert media_files(Path(dj_settings.MEDIA_ROOT)) == []


def _import_one(folder: Path) -> tuple[ImportRun, str]:
    run = cohort_import(path=folder, cohort_name="bad")
    reasons = [r for c in run.report.get("cases", []) for r in c["reasons"]]
    return run, " | ".join(reasons + [run.error])


def test_a_good_synthetic_case_is_accepted(tmp_path: Path) -> None:
    """Control for the tests below: the same builder without a fault imports."""
    folder = tmp_path / "ok"
    manifest_write(folder, [_synthetic_case(folder)])
    run, _ = _import_one(folder)
    assert run.accepted == 1 and Case.objects.get().synthetic and Cohort.objects.get().synthetic


# --- manifest values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("case_code", "", "row 2, column case_code: missing"),
        ("case_code", "bad code!", "row 2, column case_code: 'bad code!' must be"),
        ("case_code", "x" * 33, "row 2, column case_code:"),
        ("reference_pirads", "", "row 2, column reference_pirads: missing"),
        ("reference_pirads", "6", "row 2, column reference_pirads: '6' is not an integer 1–5"),
        ("reference_pirads", "three", "row 2, column reference_pirads: 'three'"),
        ("age", "17", "row 2, column age: '17' is not an integer 18–120"),
        ("age", "121", "row 2, column age: '121'"),
        ("cspca", "maybe", "row 2, column cspca: 'maybe' must be yes, no or empty"),
        ("isup_grade", "6", "row 2, column isup_grade: '6' is not an integer 0–5"),
        ("gleason", "7", "row 2, column gleason: '7' is not a Gleason pattern"),
        ("lesion_side", "middle", "row 2, column lesion_side: 'middle'"),
        ("synthetic", "perhaps", "row 2, column synthetic: 'perhaps'"),
        ("mr_t2", "", "row 2, column mr_t2: missing"),
        ("mr_t2", "nowhere.nii.gz", "row 2, column mr_t2: the path does not exist"),
        (
            "mr_t2",
            "../outside.nii.gz",
            "row 2, column mr_t2: the path leaves the cohort folder",
        ),
        ("mr_t2", "/etc/passwd", "row 2, column mr_t2: an absolute path"),
    ],
)
def test_bad_manifest_value(tmp_path: Path, column: str, value: str, message: str) -> None:
    folder = tmp_path / "in"
    (tmp_path / "outside.nii.gz").write_bytes(b"x")
    manifest_write(folder, [_synthetic_case(folder, **{column: value})])
    run, text = _import_one(folder)
    assert message in text
    assert run.rejected == 1 and run.accepted == 0
    _assert_nothing_stored()


def test_manifest_missing_column(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    manifest_write(folder, [_synthetic_case(folder)], columns=["case_code", "mr_t2"])
    run, text = _import_one(folder)
    assert run.status == "failed"
    assert "manifest.csv: missing required column(s): reference_pirads" in text
    _assert_nothing_stored()


def test_manifest_not_utf8(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "manifest.csv").write_bytes(
        "case_code,reference_pirads,mr_t2\nÄ,3,x\n".encode("latin-1")
    )
    run, text = _import_one(folder)
    assert run.status == "failed" and "not UTF-8" in text
    _assert_nothing_stored()


def test_duplicate_case_code_in_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    manifest_write(folder, [_synthetic_case(folder), _synthetic_case(folder)])
    run, text = _import_one(folder)
    assert "row 3, column case_code: duplicate case code 'S01' (also on row 2)" in text
    assert run.accepted == 1 and run.rejected == 1
    assert Case.objects.count() == 1 and ImageSeries.objects.count() == 1


def test_duplicate_case_code_against_the_cohort(tmp_path: Path) -> None:
    first = tmp_path / "first"
    manifest_write(first, [_synthetic_case(first)])
    cohort_import(path=first, cohort_name="bad")
    stored = sorted(media_files(Path(dj_settings.MEDIA_ROOT)))
    second = tmp_path / "second"
    manifest_write(second, [_synthetic_case(second, reference_pirads="5")])
    run, text = _import_one(second)
    assert "row 2, column case_code: duplicate case code 'S01'" in text
    assert run.rejected == 1 and Case.objects.get().reference_pirads == 3
    assert sorted(media_files(Path(dj_settings.MEDIA_ROOT))) == stored


# --- images -------------------------------------------------------------------------------------


def test_non_image_file(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    manifest_write(folder, [_synthetic_case(folder, mr_t2="notes.txt")])
    _, text = _import_one(folder)
    assert "row 2, column mr_t2: the file is neither a NIfTI file" in text
    _assert_nothing_stored()


def test_corrupt_nifti(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    manifest_write(folder, [_synthetic_case(folder, mr_t2="broken.nii.gz")])
    _, text = _import_one(folder)
    assert "row 2, column mr_t2: the file is not a readable NIfTI file" in text
    _assert_nothing_stored()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_voxels(tmp_path: Path, bad: float) -> None:
    folder = tmp_path / "in"
    data = np.ones((6, 6, 3), dtype=np.float32)
    data[2, 3, 1] = bad
    _nifti(folder / "nan.nii.gz", data)
    manifest_write(folder, [_synthetic_case(folder, mr_t2="nan.nii.gz")])
    _, text = _import_one(folder)
    assert "row 2, column mr_t2: the file contains NaN or infinite voxel values" in text
    _assert_nothing_stored()


@pytest.mark.parametrize("fault", ["shape", "affine"])
def test_label_grid_differs_from_image(tmp_path: Path, fault: str) -> None:
    folder = tmp_path / "in"
    row = _synthetic_case(folder)
    if fault == "shape":
        _nifti(folder / "label.nii.gz", np.zeros((8, 8, 5), dtype=np.uint8))
    else:
        shifted = np.eye(4)
        shifted[0, 3] = 0.5
        _nifti(folder / "label.nii.gz", np.zeros((8, 8, 4), dtype=np.uint8), shifted)
    row["mr_label"] = "label.nii.gz"
    manifest_write(folder, [row])
    _, text = _import_one(folder)
    assert (
        "row 2, column mr_label: the file grid" in text
        and "does not match the mr_t2 image grid" in text
    )
    # The valid T2 of the same case is not stored either: whole case or nothing.
    _assert_nothing_stored()


def test_landmarks_not_integers(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    row = _synthetic_case(folder)
    _nifti(folder / "lm.nii.gz", np.full((8, 8, 4), 0.5, dtype=np.float32))
    row["mr_landmarks"] = "lm.nii.gz"
    manifest_write(folder, [row])
    _, text = _import_one(folder)
    assert "row 2, column mr_landmarks: the file landmark values must be integers 0–255" in text
    _assert_nothing_stored()


@pytest.fixture
def px_folder(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    copy_in(shared_data, PROSTATEX_T2, folder, "t2")
    return folder


def test_wrong_modality(px_folder: Path) -> None:
    _synthetic_case(px_folder)
    manifest_write(px_folder, [_synthetic_case(px_folder, trus="t2")])
    _, text = _import_one(px_folder)
    assert "row 2, column trus: the folder has DICOM modality 'MR', expected US" in text
    _assert_nothing_stored()


def test_wrong_modality_for_t2(px_folder: Path) -> None:
    for p in (px_folder / "t2").glob("*.dcm"):
        ds = pydicom.dcmread(p)
        ds.Modality = "CT"
        ds.save_as(p)
    manifest_write(px_folder, [_synthetic_case(px_folder, mr_t2="t2")])
    _, text = _import_one(px_folder)
    assert "row 2, column mr_t2: the folder has DICOM modality 'CT', expected MR" in text
    _assert_nothing_stored()


def test_truncated_dicom(px_folder: Path) -> None:
    victim = sorted((px_folder / "t2").glob("*.dcm"))[4]
    victim.write_bytes(victim.read_bytes()[:-5000])
    manifest_write(px_folder, [_synthetic_case(px_folder, mr_t2="t2")])
    _, text = _import_one(px_folder)
    # Named by its place in the series, never by its name (names can carry identifiers).
    assert "row 2, column mr_t2: file 5 of " in text and "truncated" in text
    assert victim.name not in text
    _assert_nothing_stored()


def test_corrupt_dicom(px_folder: Path) -> None:
    victim = sorted((px_folder / "t2").glob("*.dcm"))[2]
    data = bytearray(victim.read_bytes())
    data[132:400] = os.urandom(268)  # header elements destroyed, preamble kept
    victim.write_bytes(bytes(data))
    manifest_write(px_folder, [_synthetic_case(px_folder, mr_t2="t2")])
    _, text = _import_one(px_folder)
    assert "row 2, column mr_t2: file 3 of " in text and victim.name not in text
    _assert_nothing_stored()


def test_non_dicom_file_in_series_folder(px_folder: Path) -> None:
    (px_folder / "t2" / "readme.txt").write_text("scanner export notes")
    manifest_write(px_folder, [_synthetic_case(px_folder, mr_t2="t2")])
    _, text = _import_one(px_folder)
    assert "row 2, column mr_t2: file " in text and "not a DICOM file" in text
    assert "readme" not in text
    _assert_nothing_stored()


def test_missing_slice_names_file(px_folder: Path) -> None:
    files = sorted(
        (px_folder / "t2").glob("*.dcm"),
        key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]),
    )
    files[8].unlink()
    manifest_write(px_folder, [_synthetic_case(px_folder, mr_t2="t2")])
    _, text = _import_one(px_folder)
    assert "row 2, column mr_t2: file " in text and "missing slice(s) before this file" in text
    _assert_nothing_stored()


def test_failure_while_writing_rows_leaves_nothing(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from registration import services

    folder = tmp_path / "in"
    row = _synthetic_case(folder)
    _nifti(folder / "label.nii.gz", np.zeros((8, 8, 4), dtype=np.uint8))
    row["mr_label"] = "label.nii.gz"
    manifest_write(folder, [row])
    real = services.series_rows_create
    calls = []

    def flaky(**kwargs):  # noqa: ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise services.SeriesInputError("simulated failure on the second series")
        return real(**kwargs)

    monkeypatch.setattr(services, "series_rows_create", flaky)
    run, text = _import_one(folder)
    assert "simulated failure on the second series" in text and len(calls) == 2
    assert Case.objects.count() == 0 and ImageSeries.objects.count() == 0
    assert media_files(Path(dj_settings.MEDIA_ROOT)) == []
    assert Cohort.objects.count() == 0 and ImportRun.objects.get().cohort is None


# --- zip safety ---------------------------------------------------------------------------------


def _zip_with(tmp_path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    path = tmp_path / "upload.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def _manifest_bytes() -> bytes:
    return b"case_code,reference_pirads,mr_t2\nS01,3,t2.nii.gz\n"


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("../evil.txt", "contains '..' (path traversal)"),
        ("cohort/../../evil.txt", "contains '..' (path traversal)"),
        ("/etc/evil.txt", "has an absolute path"),
        ("C:/evil.txt", "has an absolute path"),
    ],
)
def test_zip_path_traversal(tmp_path: Path, member: str, message: str) -> None:
    archive = _zip_with(tmp_path, [("manifest.csv", _manifest_bytes()), (member, b"x")])
    run = cohort_import(path=archive)
    assert run.status == "failed" and message in run.error and "zip member 2" in run.error
    assert member not in run.error
    _assert_nothing_stored()
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link.nii.gz")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip_with(tmp_path, [("manifest.csv", _manifest_bytes()), (info, b"/etc/passwd")])
    run = cohort_import(path=archive)
    assert run.status == "failed" and "zip member 2 is a symbolic link" in run.error
    _assert_nothing_stored()


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    archive = _zip_with(
        tmp_path, [("manifest.csv", _manifest_bytes()), ("t2.nii.gz", b"\0" * (20 * 1024 * 1024))]
    )
    run = cohort_import(path=archive)
    assert run.status == "failed" and "compression ratio" in run.error and "zip bomb" in run.error
    _assert_nothing_stored()


def test_zip_size_limit(tmp_path: Path, settings) -> None:  # noqa: ANN001
    settings.MRITRUS_IMPORT_MAX_BYTES = 1000
    archive = _zip_with(
        tmp_path, [("manifest.csv", _manifest_bytes()), ("t2.nii.gz", os.urandom(5000))]
    )
    run = cohort_import(path=archive)
    assert run.status == "failed" and "more than the limit of 1000" in run.error
    _assert_nothing_stored()


def test_zip_file_count_limit(tmp_path: Path, settings) -> None:  # noqa: ANN001
    settings.MRITRUS_IMPORT_MAX_FILES = 3
    archive = _zip_with(tmp_path, [(f"f{i}.txt", b"x") for i in range(5)])
    run = cohort_import(path=archive)
    assert run.status == "failed" and "holds 5 files, more than the limit of 3" in run.error
    _assert_nothing_stored()


def test_zip_lying_header_is_caught_while_inflating(tmp_path: Path) -> None:
    """A member whose declared size is smaller than what it inflates to is refused mid-stream."""
    archive = _zip_with(
        tmp_path, [("manifest.csv", _manifest_bytes()), ("t2.nii.gz", os.urandom(4096))]
    )
    data = bytearray(archive.read_bytes())
    # Patch the declared uncompressed size (central directory and local header) of the 2nd member.
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("t2.nii.gz")
    local = info.header_offset
    data[local + 22 : local + 26] = (100).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    run = cohort_import(path=archive)
    assert run.status == "failed" and "zip member 2" in run.error
    assert "t2.nii.gz" not in run.error  # the CRC message of zipfile quotes the name
    _assert_nothing_stored()


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "cohort.zip"
    fake.write_text("hello")
    run = cohort_import(path=fake)
    assert run.status == "failed" and "not a zip file" in run.error
    _assert_nothing_stored()


def test_dicom_only_without_dicom(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    run = cohort_import(path=folder)
    assert run.status == "failed" and "neither a manifest cohort nor DICOM" in run.error
    _assert_nothing_stored()


def test_dicom_only_without_t2(shared_data: Path, tmp_path: Path) -> None:
    from .conftest import PROSTATEX_ADC

    folder = tmp_path / "in"
    copy_in(shared_data, PROSTATEX_ADC, folder, "adc")
    run = cohort_import(path=folder)
    assert run.rejected == 1 and "no T2 series found" in run.report["cases"][0]["reasons"][0]
    _assert_nothing_stored()
    shutil.rmtree(folder)


def test_upload_larger_than_limit_refused_before_spooling(
    settings, coordinator, client_for, tmp_path: Path
) -> None:  # noqa: ANN001
    from django.urls import reverse

    settings.MRITRUS_IMPORT_MAX_BYTES = 100
    archive = _zip_with(
        tmp_path, [("manifest.csv", _manifest_bytes()), ("t2.nii.gz", os.urandom(500))]
    )
    with archive.open("rb") as fh:
        response = client_for(coordinator).post(
            reverse("registration:cohort-upload"), {"archive": fh}
        )
    run = ImportRun.objects.get()
    assert response.status_code == 302 and run.status == "failed"
    assert "more than the limit of 100" in run.error
    _assert_nothing_stored()
