"""Blinding cues: nothing served may differ systematically between arms except image content.

The fixture's arms are deliberately unlike as stored: the original T2 is 24×24×5 at
0.6×0.6×3 mm, the registered T2 and the TRUS 20×22×6 at 0.8 mm on another frame. One test per
cue compares what a reader receives for the same case in every arm.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pydicom
import pytest
from django.urls import reverse

from readerstudy import read_services
from readerstudy.display import MATRIX, MPR_STEP, PIXEL_MM, PLANES, SLICE_MM, SLICES
from readerstudy.models import Assignment, AssignmentSeries
from readerstudy.serving import view_instance_bytes, view_manifest
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db

# Values that are meant to differ per assignment (fresh UIDs, the reading code) or that are the
# image content itself (pixels, and the window derived from them).
PER_ASSIGNMENT = {
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "PatientName",
    "PatientID",
    "PixelData",
    "WindowCenter",
    "WindowWidth",
}


def primaries_by_arm(study, user) -> dict[str, AssignmentSeries]:  # noqa: ANN001
    """The primary view of each arm for the case the reader reads first in session 1."""
    first = Assignment.objects.filter(study=study, reader__user=user, session=1).first()
    views = AssignmentSeries.objects.filter(
        assignment__study=study, assignment__reader__user=user, assignment__case=first.case
    ).select_related("assignment__arm", "series")
    return {v.assignment.arm.kind: v for v in views if v.role == "primary"}


def served(view: AssignmentSeries, k: int) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(view_instance_bytes(view=view, slice_index=k)))


def test_stored_arms_differ_in_geometry(open_study, junior):
    # The premise: without the display grid every cue below would give the arm away.
    views = primaries_by_arm(open_study, junior)
    assert views["original"].series.shape != views["registered"].series.shape
    assert views["original"].series.spacing != views["registered"].series.spacing


def test_cue_slice_count(open_study, junior):
    views = primaries_by_arm(open_study, junior)
    counts = {arm: len(view_manifest(view=v)["imageIds"]) for arm, v in views.items()}
    assert set(counts.values()) == {SLICES}, counts


def test_cue_pixel_spacing_matrix_and_field_of_view(open_study, junior):
    views = primaries_by_arm(open_study, junior)
    for arm, view in views.items():
        ds = served(view, 0)
        assert (ds.Rows, ds.Columns) == (MATRIX, MATRIX), arm
        assert [float(v) for v in ds.PixelSpacing] == [PIXEL_MM, PIXEL_MM], arm
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == SLICE_MM, arm
        assert ds.Rows * float(ds.PixelSpacing[0]) == MATRIX * PIXEL_MM, arm


def test_cue_slice_positions_and_orientation(open_study, junior):
    views = primaries_by_arm(open_study, junior)
    geometry = {}
    for arm, view in views.items():
        rows = []
        for k in (0, SLICES // 2, SLICES - 1):
            ds = served(view, k)
            rows.append(
                (
                    tuple(ds.ImagePositionPatient),
                    tuple(ds.ImageOrientationPatient),
                    ds.SliceLocation,
                    ds.InstanceNumber,
                )
            )
        geometry[arm] = rows
    assert geometry["original"] == geometry["registered"] == geometry["fused"]
    # Relative to the gland centre: the middle of the stack sits at 0 mm in every arm.
    assert abs(float(geometry["original"][1][2])) <= SLICE_MM


def test_cue_every_header_value(open_study, junior):
    views = primaries_by_arm(open_study, junior)
    headers = {}
    for arm, view in views.items():
        ds = served(view, SLICES // 2)
        headers[arm] = {
            e.keyword: str(e.value) for e in ds.iterall() if e.keyword not in PER_ASSIGNMENT
        }
        headers[arm]["meta"] = str(ds.file_meta.TransferSyntaxUID)
    assert headers["original"] == headers["registered"] == headers["fused"]


def test_cue_transfer_size(open_study, junior):
    # Load time follows bytes: every slice of every arm is the same size (uncompressed, one grid),
    # but for the few bytes of UID and window strings whose length varies at random.
    views = primaries_by_arm(open_study, junior)
    sizes = [
        len(view_instance_bytes(view=v, slice_index=k))
        for v in views.values()
        for k in (0, SLICES - 1)
    ]
    assert max(sizes) - min(sizes) <= 32, sizes


def test_fused_underlay_shares_the_grid_of_its_t2(open_study, junior):
    views = primaries_by_arm(open_study, junior)
    fused = views["fused"]
    underlay = fused.assignment.views.get(role="underlay")
    for k in (0, SLICES // 2):
        t2, us = served(fused, k), served(underlay, k)
        assert tuple(t2.ImagePositionPatient) == tuple(us.ImagePositionPatient)
        assert t2.FrameOfReferenceUID == us.FrameOfReferenceUID
        assert (t2.Rows, t2.Columns, list(t2.PixelSpacing)) == (
            us.Rows,
            us.Columns,
            list(us.PixelSpacing),
        )


def test_cue_viewer_page_differs_only_by_codes(open_study, junior, client_for):
    """The viewer page of the original and registered arm: same text once codes are masked."""
    c = client_for(junior)
    pages = {}
    for session in (1, 2, 3):
        items = list(
            Assignment.objects.filter(study=open_study, reader__user=junior, session=session)
        )
        kind = items[0].arm.kind
        html = c.get(reverse("readerstudy:viewer", args=[items[0].token])).content.decode()
        for a in items:
            html = html.replace(a.token, "TOKEN").replace(a.reading_code, "CODE")
            for v in a.views.all():
                html = html.replace(v.token, "VIEW")
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
        pages[kind] = re.sub(r"Case \d+ of \d+", "Case k of n", html)
        for a in items:
            read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    assert pages["original"] == pages["registered"]


def test_display_pixels_are_not_blank(open_study, junior):
    views = primaries_by_arm(open_study, junior)
    for arm, view in views.items():
        ds = served(view, SLICES // 2)
        assert np.asarray(ds.pixel_array).max() > 0, arm


@pytest.mark.parametrize("plane", ["sagittal", "coronal"])
def test_cue_reformats_share_one_geometry(open_study, junior, plane):
    views = primaries_by_arm(open_study, junior)
    seen = {}
    for arm, view in views.items():
        assert len(view_manifest(view=view)["planes"][plane]) == PLANES[plane], arm
        ds = pydicom.dcmread(
            io.BytesIO(view_instance_bytes(view=view, slice_index=PLANES[plane] // 2, plane=plane))
        )
        seen[arm] = {
            e.keyword: str(e.value) for e in ds.iterall() if e.keyword not in PER_ASSIGNMENT
        }
    assert seen["original"] == seen["registered"] == seen["fused"]


def test_reformats_cut_the_same_voxels_as_the_axial_stack(open_study, junior, client_for):
    view = primaries_by_arm(open_study, junior)["original"]
    axial = np.stack([served(view, k).pixel_array for k in range(SLICES)])  # (z, y, x)
    for plane in ("sagittal", "coronal"):
        index = PLANES[plane] // 2
        ds = pydicom.dcmread(
            io.BytesIO(view_instance_bytes(view=view, slice_index=index, plane=plane))
        )
        cut = index * MPR_STEP + MPR_STEP // 2
        expected = axial[::-1, :, cut] if plane == "sagittal" else axial[::-1, cut, :]
        assert np.array_equal(ds.pixel_array, expected), plane
        # the first pixel sits where the axial stack says: top slice, first row/column
        top = served(view, SLICES - 1)
        assert float(ds.ImagePositionPatient[2]) == float(top.ImagePositionPatient[2])
    # the manifest's reformat URLs are served to the reader like the axial ones
    c = client_for(junior)
    data = c.get(reverse("readerstudy:series-manifest", args=[view.token])).json()
    response = c.get(data["planes"]["coronal"][0].removeprefix("wadouri:"))
    assert response.status_code == 200


def test_cue_preview_png_same_size_in_every_arm(open_study, junior):
    from PIL import Image

    from readerstudy.preview import assignment_preview_png

    views = primaries_by_arm(open_study, junior)
    sizes = set()
    for view in views.values():
        png = assignment_preview_png(assignment=view.assignment, slice_index=SLICES // 2)
        sizes.add(Image.open(io.BytesIO(png)).size)
    assert sizes == {(MATRIX, MATRIX)}


def test_preview_is_the_readers_own_only(open_study, junior, senior, client_for):
    mine = Assignment.objects.filter(study=open_study, reader__user=junior, session=1).first()
    url = reverse("readerstudy:viewer-preview", args=[mine.token])
    assert client_for(junior).get(url).status_code == 200
    assert client_for(senior).get(url).status_code == 404
    assert client_for(junior).get(url + f"?slice={SLICES}").status_code == 404


def test_cue_load_time_grids_prepared_when_the_study_opens(open_study, settings):
    """Every arm's display grid is on disk before a reader asks (no slower first open in one arm)."""
    from pathlib import Path

    from readerstudy.display_services import study_display_prepare

    built = study_display_prepare(study=open_study)
    views = AssignmentSeries.objects.filter(assignment__study=open_study)
    # one grid per series and centre: the same series is shared by both readers
    assert built == len({(v.series_id, v.role) for v in views})
    files = list((Path(settings.MEDIA_ROOT) / "display").rglob("*.npy"))
    assert len(files) == built
    assert study_display_prepare(study=open_study) == built  # found again, not rebuilt
    assert len(list((Path(settings.MEDIA_ROOT) / "display").rglob("*.npy"))) == built
