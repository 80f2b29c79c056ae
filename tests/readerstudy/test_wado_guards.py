"""Each check of the reader WADO endpoint on its own: a request that passes every other check and
fails only this one is refused (404). The viewer and manifest have such tests; WADO now too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from readerstudy import read_services, services
from readerstudy.models import Assignment, AssignmentSeries
from readerstudy.serving import view_slice_uids
from registration.models import DicomInstance
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db


def _url(*, study: str, series: str, obj: str) -> str:
    return reverse("readerstudy:wado") + (
        f"?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={obj}"
        "&contentType=application/dicom"
    )


def _valid(view: AssignmentSeries) -> tuple[str, str, str]:
    # Readers are served slices of the common display grid, each under its own view-keyed UID.
    return view.study_uid, view.series_uid, view_slice_uids(view=view)[0]


def _first_view(study, user) -> AssignmentSeries:  # noqa: ANN001
    a = Assignment.objects.filter(study=study, reader__user=user, session=1).order_by("position")
    return a.first().views.get(role="primary")


def test_valid_request_is_served(open_study, junior, client_for) -> None:  # noqa: ANN001
    study, series, obj = _valid(_first_view(open_study, junior))
    response = client_for(junior).get(_url(study=study, series=series, obj=obj))
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"


def test_stored_object_uid_under_my_remapped_series_is_404(open_study, junior, client_for) -> None:  # noqa: ANN001
    view = _first_view(open_study, junior)
    study, series, _ = _valid(view)
    stored = view.series.instances.order_by("instance_number").first().sop_instance_uid
    assert client_for(junior).get(_url(study=study, series=series, obj=stored)).status_code == 404


def test_stored_object_uid_of_another_series_is_404(open_study, junior, client_for) -> None:  # noqa: ANN001
    view = _first_view(open_study, junior)
    study, series, _ = _valid(view)
    c = client_for(junior)
    for other in DicomInstance.objects.exclude(series=view.series)[:20]:
        assert (
            c.get(_url(study=study, series=series, obj=other.sop_instance_uid)).status_code == 404
        )


def test_wrong_study_uid_is_404(open_study, junior, client_for) -> None:  # noqa: ANN001
    view = _first_view(open_study, junior)
    _, series, obj = _valid(view)
    c = client_for(junior)
    other_view = (
        AssignmentSeries.objects.filter(assignment__reader__user=junior)
        .exclude(study_uid=view.study_uid)
        .first()
    )
    for study in ("", "2.25.1", view.series.study_instance_uid, other_view.study_uid):
        assert c.get(_url(study=study, series=series, obj=obj)).status_code == 404, study


def test_session_behind_its_washout_is_404(open_study, junior, client_for) -> None:  # noqa: ANN001
    open_study.washout_days = 30
    open_study.save()
    for a in Assignment.objects.filter(study=open_study, reader__user=junior, session=1):
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    later = Assignment.objects.filter(study=open_study, reader__user=junior, session=2).first()
    study, series, obj = _valid(later.views.get(role="primary"))
    assert client_for(junior).get(_url(study=study, series=series, obj=obj)).status_code == 404
    # The same request once the washout is over is served: only the washout refused it.
    open_study.washout_days = 0
    open_study.save()
    assert client_for(junior).get(_url(study=study, series=series, obj=obj)).status_code == 200


def test_locked_study_is_404(open_study, junior, coordinator, client_for) -> None:  # noqa: ANN001
    study, series, obj = _valid(_first_view(open_study, junior))
    c = client_for(junior)
    assert c.get(_url(study=study, series=series, obj=obj)).status_code == 200
    services.study_lock(study=open_study, user=coordinator)
    assert c.get(_url(study=study, series=series, obj=obj)).status_code == 404


def test_draft_study_is_404(cohort, three_cases, coordinator, junior, client_for) -> None:  # noqa: ANN001
    draft = services.study_create(
        name="draft",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior],
        washout_days=0,
    )
    services.study_worklists_generate(study=draft, user=coordinator)
    study, series, obj = _valid(_first_view(draft, junior))
    c = client_for(junior)
    assert c.get(_url(study=study, series=series, obj=obj)).status_code == 404
    services.study_open(study=draft, user=coordinator)
    assert c.get(_url(study=study, series=series, obj=obj)).status_code == 200


def test_another_readers_series_is_404(open_study, junior, senior, client_for) -> None:  # noqa: ANN001
    study, series, obj = _valid(_first_view(open_study, senior))
    assert client_for(junior).get(_url(study=study, series=series, obj=obj)).status_code == 404
    assert client_for(senior).get(_url(study=study, series=series, obj=obj)).status_code == 200
