"""Progress of long imports: per-case callback and saved counts, the upload page's poll. SYNTHETIC."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from registration.importing.run import cohort_import
from registration.models import ImportRun
from tests.dicomweb.conftest import t2_files

pytestmark = pytest.mark.django_db


def dicom_only_input(folder: Path) -> Path:
    """Two SIMULATED patients, DICOM files only."""
    for patient in ("SIM-P1", "SIM-P2"):
        t2_files(folder / patient, patient=patient, slices=2)
    return folder


def test_progress_callback_counts_every_case(tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    run = cohort_import(
        path=dicom_only_input(tmp_path / "in"),
        cohort_name="Synthetic progress",
        upload_key="k-1",
        progress=lambda done, total, entry: seen.append((done, total, entry["status"])),
    )
    assert [(d, t) for d, t, _ in seen] == [(1, 2), (2, 2)]
    assert {s for _, _, s in seen} == {"accepted"} and run.accepted == 2
    assert run.report["upload_key"] == "k-1" and run.report["total"] == 2


def test_upload_page_polls_the_import_by_its_key(
    coordinator, junior, client_for, tmp_path: Path
) -> None:  # noqa: ANN001
    folder = dicom_only_input(tmp_path / "in")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in folder.rglob("*.dcm"):
            zf.write(p, p.relative_to(folder).as_posix())
    c = client_for(coordinator)
    url = reverse("registration:import-progress")
    assert c.get(url, {"key": "abc"}).json() == {"found": False}
    page = c.get(reverse("registration:cohort-upload")).content.decode()
    assert "data-upload-progress" in page and "upload_progress.js" in page
    with archive.open("rb") as fh:
        response = c.post(
            reverse("registration:cohort-upload"),
            {"archive": fh, "cohort_name": "Synthetic upload", "upload_key": "abc"},
        )
    assert response.status_code == 302
    progress = c.get(url, {"key": "abc"}).json()
    assert progress == {
        "found": True,
        "status": "done",
        "done": 2,
        "total": 2,
        "accepted": 2,
        "rejected": 0,
        "skipped": 0,
    }
    # another user's key answers nothing
    assert client_for(junior).get(url, {"key": "abc"}).status_code == 403
    assert ImportRun.objects.get().report["upload_key"] == "abc"
