"""The index-lesion mark: stored in served patient mm with its slice, required from the study's
score threshold, frozen in snapshots, and summarised as localisation in the analysis."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from readerstudy import read_services, services
from readerstudy.analysis import services as analysis_services
from readerstudy.analysis.localisation import localisation_build, mark_side
from readerstudy.display import SLICES, display_offset
from readerstudy.models import Assignment
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db


def _mark(x: float = 12.0, y: float = -5.0, k: int = 20) -> dict:
    return {"x": x, "y": y, "z": float(display_offset(slice_index=k)[2]), "slice": k}


@pytest.fixture
def marked_study(cohort, three_cases, coordinator, junior, senior):  # noqa: ANN001, ANN201
    study = services.study_create(
        name="Marks",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior, senior],
        washout_days=0,
        mark_required_from=3,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    return services.study_open(study=study, user=coordinator)


def _first(study, user) -> Assignment:  # noqa: ANN001
    return Assignment.objects.filter(study=study, reader__user=user).order_by("position").first()


def test_mark_is_required_from_the_study_threshold(marked_study, junior):
    a = _first(marked_study, junior)
    with pytest.raises(ValidationError) as info:
        read_services.read_submit(assignment=a, user=junior, data=complete({"pirads": 3}))
    assert "Mark the lesion on the image" in str(info.value)
    read = read_services.read_submit(
        assignment=a, user=junior, data=complete({"pirads": 3, "mark": _mark()})
    )
    assert (read.mark_x, read.mark_y, read.mark_slice) == (12.0, -5.0, 20)


def test_low_score_needs_no_mark_and_no_threshold_never_does(marked_study, open_study, junior):
    read_services.read_submit(
        assignment=_first(marked_study, junior), user=junior, data=complete({"pirads": 2})
    )
    assert open_study.mark_required_from is None
    read_services.read_submit(
        assignment=_first(open_study, junior), user=junior, data=complete({"pirads": 5})
    )


def test_draft_keeps_the_mark_and_clears_it(marked_study, junior):
    a = _first(marked_study, junior)
    read = read_services.read_draft_save(assignment=a, user=junior, data={"mark": _mark(k=7)})
    assert read.mark_slice == 7
    read = read_services.read_draft_save(assignment=a, user=junior, data={"mark": None})
    assert read.mark_slice is None and read.mark_x is None


@pytest.mark.parametrize(
    "bad",
    [
        {"x": 1, "y": 2, "z": 0.0},  # no slice
        {"x": 1, "y": 2, "z": 30.0, "slice": 20},  # z is not on that slice
        {"x": 500, "y": 2, "z": float(display_offset(slice_index=3)[2]), "slice": 3},  # off grid
        {"x": 1, "y": 2, "z": 0, "slice": SLICES},
        "here",
    ],
)
def test_a_mark_off_the_image_is_refused_in_words(marked_study, junior, bad):
    with pytest.raises(ValidationError) as info:
        read_services.read_draft_save(
            assignment=_first(marked_study, junior), user=junior, data={"mark": bad}
        )
    assert "click the lesion again" in str(info.value)


def test_snapshot_freezes_marks_and_analysis_localises(marked_study, junior, senior, coordinator):
    for user, x in ((junior, 12.0), (senior, 16.0)):
        for a in Assignment.objects.filter(study=marked_study, reader__user=user):
            read_services.read_submit(
                assignment=a, user=user, data=complete({"pirads": 4, "mark": _mark(x=x)})
            )
    snapshot = analysis_services.snapshot_create(study=marked_study, user=coordinator)
    rows = snapshot.payload["reads"]
    assert all(r["mark"]["slice"] == 20 for r in rows)
    assert snapshot.payload["study"]["mark_required_from"] == 3
    local = localisation_build(snapshot.payload)["per_arm"][0]
    assert local["n_marked"] == local["n_reads"] == 6
    # fixture biopsy side: "left" for reference PI-RADS >= 3 (two cases), "none" otherwise
    assert local["n_with_biopsy_side"] == 4 and local["side_agrees_with_biopsy"] == 4
    assert local["distance_median_mm"] == pytest.approx(4.0)
    assert local["n_reader_pairs"] == 3 and local["within_10mm"] == 1.0


def test_mark_side_is_the_sign_of_x_relative_to_the_gland_centre():
    assert mark_side({"x": 8.0}) == "left"
    assert mark_side({"x": -8.0}) == "right"
    assert mark_side({"x": 0.5}) == "midline"
    assert mark_side(None) == ""


def test_api_draft_takes_the_mark_and_returns_it(marked_study, junior, client_for):
    import json

    from django.urls import reverse

    a = _first(marked_study, junior)
    c = client_for(junior)
    response = c.post(
        reverse("readerstudy:api-worklist-draft", args=[a.token]),
        data=json.dumps({"pirads": 4, "mark": _mark(k=11)}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["mark_slice"] == 11


def test_diameter_is_measured_on_the_marks_slice_and_its_length_computed_here(marked_study, junior):
    a = _first(marked_study, junior)
    mark = _mark(k=20)
    z = mark["z"]
    mark["diameter"] = {"a": [0.0, 0.0, z], "b": [3.0, 4.0, z], "mm": 999}  # "mm" is ignored
    read = read_services.read_draft_save(assignment=a, user=junior, data={"mark": mark})
    assert read.mark_diameter == {"a": [0.0, 0.0, z], "b": [3.0, 4.0, z], "mm": 5.0}
    mark["diameter"] = {"a": [0.0, 0.0, z + 4], "b": [3.0, 4.0, z]}  # not on the mark's slice
    with pytest.raises(ValidationError) as info:
        read_services.read_draft_save(assignment=a, user=junior, data={"mark": mark})
    assert "measure it again" in str(info.value)
