"""The cohort manifest contract: the columns of ``manifest.csv``, written by the simulator and the
real-case scripts and read by the web importer. One list, imported by both sides (torch-free).
"""

from __future__ import annotations

__all__ = [
    "IMAGE_COLUMNS",
    "LABEL_COLUMNS",
    "LANDMARK_COLUMNS",
    "MANIFEST_COLUMNS",
    "REFERENCE_COLUMNS",
]

# Per-case reference standard, as the coordinator enters it on the reference page.
REFERENCE_COLUMNS: tuple[str, ...] = (
    "reference_pirads",
    "cspca",
    "isup_grade",
    "gleason",
    "lesion_side",
)
IMAGE_COLUMNS: tuple[str, ...] = ("mr_t2", "trus")
LABEL_COLUMNS: tuple[str, ...] = ("mr_label", "trus_label")
LANDMARK_COLUMNS: tuple[str, ...] = ("mr_landmarks", "trus_landmarks")

MANIFEST_COLUMNS: tuple[str, ...] = (
    "case_code",
    "age",
    *REFERENCE_COLUMNS,
    *IMAGE_COLUMNS,
    *LABEL_COLUMNS,
    *LANDMARK_COLUMNS,
    "synthetic",
)
