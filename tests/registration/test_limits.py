"""Resource limits of the import: voxel counts from headers, manifest rows, report pages, full disk.

Volumes are SYNTHETIC. The full-disk tests put MEDIA_ROOT on a size-limited tmpfs where the
machine allows mounting one (root with CAP_SYS_ADMIN, as on CI), else they inject ENOSPC where
the storage writes.
"""

from __future__ import annotations

import errno
import io
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from django.core.files.uploadhandler import FileUploadHandler
from django.core.management import CommandError, call_command
from django.urls import reverse

from registration import series
from registration.dicom.write import series_write
from registration.importing.run import cohort_import
from registration.models import Case, Cohort, ImageSeries, ImportRun

from .conftest import manifest_write, zip_folder

pytestmark = pytest.mark.django_db


def _nifti(path: Path, shape: tuple[int, ...], seed: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).normal(300, 50, size=shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 3.0, 1.0])), str(path))
    return path.name


def _import(folder: Path) -> ImportRun:
    return cohort_import(path=folder, cohort_name="limits")


def _nothing_stored(media: Path) -> None:
    assert Case.objects.count() == 0 and ImageSeries.objects.count() == 0
    assert not Cohort.objects.filter(name="limits").exists()
    assert [p for p in media.rglob("*") if p.is_file()] == []


# --- sizes from headers --------------------------------------------------------------------------


def test_nifti_larger_than_the_voxel_limit_is_refused_from_its_header(
    tmp_path: Path, settings, monkeypatch
) -> None:  # noqa: ANN001
    settings.MRITRUS_IMPORT_MAX_VOXELS = 30 * 30 * 30
    folder = tmp_path / "in"
    _nifti(folder / "big.nii.gz", (32, 32, 32))
    manifest_write(folder, [{"case_code": "S01", "reference_pirads": "3", "mr_t2": "big.nii.gz"}])

    def never(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the voxels were read before the header was checked")

    monkeypatch.setattr("nibabel.arrayproxy.ArrayProxy.__array__", never)
    run = _import(folder)
    reasons = " ".join(r for c in run.report["cases"] for r in c["reasons"])
    assert "32768 voxels (32×32×32), more than the limit of 27000" in reasons
    _nothing_stored(Path(settings.MEDIA_ROOT))


def test_dicom_series_larger_than_the_voxel_limit_is_refused_before_decoding(
    tmp_path: Path, settings, monkeypatch
) -> None:  # noqa: ANN001
    settings.MRITRUS_IMPORT_MAX_VOXELS = 1000
    folder = tmp_path / "in"
    series_write(
        folder / "t2",
        volume=np.ones((16, 16, 4), dtype=np.float32),
        affine=np.diag([-0.8, -0.8, 3.0, 1.0]),
        modality="MR",
        study_uid="1.2.826.0.1.3680043.9.1.1",
        series_uid="1.2.826.0.1.3680043.9.1.2",
        frame_of_reference_uid="1.2.826.0.1.3680043.9.1.3",
        sop_uids=[f"1.2.826.0.1.3680043.9.1.4.{k}" for k in range(4)],
        patient_name="SYN",
        patient_id="SYN",
    )
    manifest_write(folder, [{"case_code": "S01", "reference_pirads": "3", "mr_t2": "t2"}])

    def never(self):  # noqa: ANN001, ANN202
        raise AssertionError("pixels were decoded before the header was checked")

    monkeypatch.setattr("pydicom.dataset.Dataset.pixel_array", property(never))
    run = _import(folder)
    reasons = " ".join(r for c in run.report["cases"] for r in c["reasons"])
    assert "the series has 1024 voxels (16×16×4), more than the limit of 1000" in reasons
    _nothing_stored(Path(settings.MEDIA_ROOT))


# --- manifest rows and report pages ---------------------------------------------------------------


def test_manifest_with_too_many_rows_is_refused_whole(tmp_path: Path, settings) -> None:  # noqa: ANN001
    settings.MRITRUS_IMPORT_MAX_ROWS = 3
    folder = tmp_path / "in"
    _nifti(folder / "t2.nii.gz", (8, 8, 4))
    rows = [{"case_code": f"S{i}", "reference_pirads": "3", "mr_t2": "t2.nii.gz"} for i in range(4)]
    run = _import(manifest_write(folder, rows))
    assert run.status == "failed" and "more than 3 case rows" in run.error
    _nothing_stored(Path(settings.MEDIA_ROOT))


def test_report_is_paginated_in_the_page_and_the_api(
    tmp_path: Path, settings, coordinator, client_for
) -> None:  # noqa: ANN001
    settings.MRITRUS_REPORT_PAGE_SIZE = 2
    rows = [{"case_code": f"S{i}", "reference_pirads": "9", "mr_t2": "x"} for i in range(5)]
    run = _import(manifest_write(tmp_path / "in", rows))
    assert run.rejected == 5
    client = client_for(coordinator)
    page = client.get(reverse("registration:import-detail", args=[run.pk]) + "?page=3")
    text = page.content.decode()
    assert "page 3 of 3" in text and "row 6," in text and "row 2," not in text
    listed = client.get("/api/imports/").json()["results"][0]
    assert "report" not in listed and listed["rejected"] == 5
    detail = client.get(f"/api/imports/{run.pk}/?page=2").json()["report"]
    assert (detail["page"], detail["pages"], detail["case_count"]) == (2, 3, 5)
    assert [c["row"] for c in detail["cases"]] == [4, 5]
    assert client.get(f"/api/imports/{run.pk}/?page=99").json()["report"]["page"] == 3


# --- full disk -------------------------------------------------------------------------------------


@contextmanager
def _small_disk(path: Path, *, kib: int) -> Iterator[bool]:
    """A tmpfs of ``kib`` KiB at ``path`` when the machine allows mounting one."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def full_disk(tmp_path: Path, settings, monkeypatch) -> Iterator[Path]:  # noqa: ANN001
    """MEDIA_ROOT on a 160 KiB disk: a small case fits, a 64×64×40 one does not."""
    media = tmp_path / "small-media"
    with _small_disk(media, kib=160) as mounted:
        settings.MEDIA_ROOT = media
        if not mounted:
            write = series.series_write

            def series_write_full(directory, *, volume, **kwargs):  # noqa: ANN001, ANN003, ANN202
                if np.asarray(volume).size > 20_000:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return write(directory, volume=volume, **kwargs)

            monkeypatch.setattr(series, "series_write", series_write_full)
        yield media


def _two_cases(folder: Path, *, first_shape: tuple[int, int, int]) -> Path:
    _nifti(folder / "small.nii.gz", first_shape, seed=1)
    _nifti(folder / "big.nii.gz", (64, 64, 40), seed=2)
    rows = [
        {"case_code": "S01", "reference_pirads": "3", "mr_t2": "small.nii.gz"},
        {"case_code": "S02", "reference_pirads": "3", "mr_t2": "big.nii.gz"},
    ]
    return manifest_write(folder, rows)


def _leftovers(media: Path) -> list[Path]:
    tmp = media / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def test_full_disk_in_the_command_fails_the_run_cleanly(tmp_path: Path, full_disk: Path) -> None:
    folder = _two_cases(tmp_path / "in", first_shape=(8, 8, 4))
    out = io.StringIO()
    with pytest.raises(CommandError, match="no space left"):
        call_command("cohort_import", str(folder), "--cohort", "limits", stdout=out)
    run = ImportRun.objects.get()
    assert run.status == "failed" and run.finished_at is not None
    assert (
        run.error.startswith("no space left") and "1 case(s) stored before it are kept" in run.error
    )
    assert [c["status"] for c in run.report["cases"]] == ["accepted", "rejected"]
    assert run.report["cases"][1]["reasons"] == ["no space left on the server's storage"]
    assert list(Case.objects.values_list("case_code", flat=True)) == ["S01"]
    assert _leftovers(full_disk) == []
    assert "no space left" in out.getvalue()


def test_full_disk_on_the_web_upload_answers_cleanly_and_leaves_nothing(
    tmp_path: Path, full_disk: Path, coordinator, client_for
) -> None:  # noqa: ANN001
    folder = tmp_path / "in" / "cohort"
    _nifti(folder / "big.nii.gz", (64, 64, 40), seed=2)
    manifest_write(folder, [{"case_code": "S02", "reference_pirads": "3", "mr_t2": "big.nii.gz"}])
    client = client_for(coordinator)
    with zip_folder(folder, tmp_path / "c.zip").open("rb") as fh:
        response = client.post(reverse("registration:cohort-upload"), {"archive": fh})
    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert run.status == "failed" and run.error.startswith("no space left")
    assert "no space left" in client.get(response["Location"]).content.decode()
    with zip_folder(folder, tmp_path / "c2.zip").open("rb") as fh:
        api = client.post("/api/cohorts/upload/", {"archive": fh})
    assert api.status_code == 507 and api.json()["error"].startswith("no space left")
    assert Case.objects.count() == 0 and Cohort.objects.count() == 0
    assert ImportRun.objects.exclude(status="failed").count() == 0
    assert _leftovers(full_disk) == []


class FullDiskUploadHandler(FileUploadHandler):
    """Django's own spooling of the request body hits a full disk."""

    def receive_data_chunk(self, raw_data, start):  # noqa: ANN001, ANN201
        raise OSError(errno.ENOSPC, "No space left on device")

    def file_complete(self, file_size):  # noqa: ANN001, ANN201
        return None


def test_full_disk_while_django_receives_the_upload(
    tmp_path: Path, settings, coordinator, client_for
) -> None:  # noqa: ANN001
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.FullDiskUploadHandler"]
    with (tmp_path / "x.zip").open("wb") as fh:
        fh.write(b"PK" + b"\0" * 1000)
    with (tmp_path / "x.zip").open("rb") as fh:
        response = client_for(coordinator).post(
            reverse("registration:cohort-upload"), {"archive": fh}
        )
    assert response.status_code == 507 and b"no space left" in response.content
    assert ImportRun.objects.count() == 0
