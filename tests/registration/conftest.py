"""Builders of cohort inputs (manifest folders and zips) from the real fixtures, in tmp_path."""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

PROSTATEX_T2 = "prostatex-0000-dicom/4.000000-t2tsetra-00702"
PROSTATEX_ADC = "prostatex-0000-dicom/7.000000-ep2ddifftraDYNDISTADC-48780"
QIN_ADC = "qin-prostate-adc-seg/701-ADCb500"
QIN_SEG = "qin-prostate-adc-seg/SEG/adc_label.dcm"
YALE_T2 = "yale-prostate-t2/prostate_T2_1.nii.gz"
YALE_MASK = "yale-prostate-t2/prostate_segm_1.nii.gz"

COLUMNS = [
    "case_code",
    "age",
    "reference_pirads",
    "cspca",
    "isup_grade",
    "gleason",
    "lesion_side",
    "mr_t2",
    "trus",
    "mr_label",
    "trus_label",
    "mr_landmarks",
    "trus_landmarks",
    "synthetic",
]


def manifest_write(
    folder: Path, rows: list[dict[str, str]], columns: list[str] | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cols = columns or COLUMNS
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in cols})
    return folder


def copy_in(shared: Path, rel: str, folder: Path, name: str) -> str:
    """Copy a real fixture into the test's input folder (tmp_path, never the repository)."""
    src = shared / rel
    dst = folder / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
    return name


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent).as_posix())
    return zip_path


def media_files(media: Path) -> list[Path]:
    """Files left under MEDIA_ROOT (empty tmp folders do not count)."""
    return [p for p in media.rglob("*") if p.is_file()]


@pytest.fixture
def real_cohort(shared_data: Path, tmp_path: Path) -> Callable[..., Path]:
    """A manifest folder with the ProstateX T2 (+ADC in the folder), QIN ADC + SEG and Yale T2 + mask."""

    def make(name: str = "realcohort") -> Path:
        folder = tmp_path / "inputs" / name
        copy_in(shared_data, PROSTATEX_T2, folder, "px/t2")
        copy_in(shared_data, PROSTATEX_ADC, folder, "px/adc")
        copy_in(shared_data, QIN_ADC, folder, "qin/adc")
        copy_in(shared_data, QIN_SEG, folder, "qin/seg.dcm")
        copy_in(shared_data, YALE_T2, folder, "yale/t2.nii.gz")
        copy_in(shared_data, YALE_MASK, folder, "yale/mask.nii.gz")
        rows = [
            {
                "case_code": "PX01",
                "age": "63",
                "reference_pirads": "4",
                "cspca": "yes",
                "isup_grade": "2",
                "gleason": "3+4",
                "lesion_side": "left",
                "mr_t2": "px/t2",
            },
            {
                "case_code": "QIN01",
                "reference_pirads": "3",
                "cspca": "no",
                "mr_t2": "qin/adc",
                "mr_label": "qin/seg.dcm",
            },
            {
                "case_code": "YALE01",
                "reference_pirads": "2",
                "mr_t2": "yale/t2.nii.gz",
                "mr_label": "yale/mask.nii.gz",
            },
        ]
        return manifest_write(folder, rows)

    return make
