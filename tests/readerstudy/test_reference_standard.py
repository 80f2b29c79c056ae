"""Study integrity: no case without the reference standard enters a study; coordinators fill it in."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from readerstudy import services
from registration.models import Case, RegistrationJob
from registration.reference import case_reference_update

pytestmark = pytest.mark.django_db


def _create(cohort, coordinator, junior, standard="pirads"):  # noqa: ANN001, ANN202
    return services.study_create(
        name=f"Ref {standard}",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior],
        reference_standard=standard,
    )


def test_study_creation_refuses_cases_without_pirads_and_lists_them(
    cohort, three_cases, coordinator, junior
):
    Case.objects.filter(case_code__in=["SYN-A", "SYN-C"]).update(reference_pirads=None)
    with pytest.raises(ValidationError) as info:
        _create(cohort, coordinator, junior)
    message = " ".join(info.value.message_dict["cohort"])
    assert "2 case(s)" in message and "SYN-A, SYN-C" in message and "SYN-B" not in message
    assert "clinical PI-RADS" in message


def test_study_creation_refuses_cases_without_biopsy_for_a_biopsy_reference(
    cohort, three_cases, coordinator, junior
):
    Case.objects.filter(case_code="SYN-B").update(cspca=None)
    _create(cohort, coordinator, junior, standard="pirads")  # PI-RADS reference: all present
    with pytest.raises(ValidationError) as info:
        _create(cohort, coordinator, junior, standard="biopsy")
    assert "SYN-B" in " ".join(info.value.message_dict["cohort"])


def test_study_create_page_shows_the_refusal(cohort, three_cases, coordinator, junior, client_for):
    Case.objects.filter(case_code="SYN-A").update(reference_pirads=None)
    response = client_for(coordinator).post(
        reverse("readerstudy:study-create"),
        {
            "name": "Refused",
            "cohort": cohort.pk,
            "arm_kinds": ["original"],
            "readers": [junior.pk],
            "washout_days": 0,
            "reference_standard": "pirads",
        },
    )
    assert response.status_code == 200
    assert "SYN-A" in response.content.decode() and "Reference standard page" in (
        response.content.decode()
    )


def test_generation_leaves_out_a_case_whose_reference_was_cleared(
    cohort, three_cases, coordinator, junior
):
    study = _create(cohort, coordinator, junior)
    Case.objects.filter(case_code="SYN-B").update(reference_pirads=None)
    result = services.study_worklists_generate(study=study, user=coordinator)
    assert any("SYN-B" in n and "clinical PI-RADS" in n for n in result.notes)
    assert not study.assignments.filter(case__case_code="SYN-B").exists()


def test_coordinator_fills_in_the_reference_on_the_cohort_page(
    cohort, three_cases, coordinator, client_for
):
    case = three_cases[0]
    Case.objects.filter(pk=case.pk).update(reference_pirads=None, cspca=None, isup_grade=None)
    c = client_for(coordinator)
    url = reverse("registration:cohort-reference", args=[cohort.pk])
    page = c.get(url).content.decode()
    assert "1 case(s) without clinical PI-RADS" in page and "SYN-A" in page
    response = c.post(
        url,
        {
            "case": case.pk,
            "reference_pirads": "4",
            "cspca": "yes",
            "isup_grade": "2",
            "gleason": "3+4",
            "lesion_side": "left",
        },
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.reference_pirads, case.cspca, case.isup_grade, case.gleason) == (
        4,
        True,
        2,
        "3+4",
    )
    assert "0 case(s) without clinical PI-RADS" in c.get(url).content.decode()


def test_reference_errors_are_written_for_people(cohort, three_cases, coordinator, client_for):
    case = three_cases[0]
    url = reverse("registration:cohort-reference", args=[cohort.pk])
    response = client_for(coordinator).post(
        url, {"case": case.pk, "reference_pirads": "7", "gleason": "34"}
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "Choose a PI-RADS score from 1 to 5." in text
    assert "e.g. 3+4" in text
    with pytest.raises(ValidationError) as info:
        case_reference_update(case=case, user=coordinator, data={"isup_grade": "1", "cspca": "yes"})
    assert "disagree" in str(info.value)
    with pytest.raises(ValidationError) as info:
        case_reference_update(
            case=case, user=coordinator, data={"isup_grade": "1", "gleason": "3+4"}
        )
    assert "Gleason 3+4 is ISUP grade group 2, not 1." in str(info.value)


def test_reference_page_is_for_coordinators_only(cohort, three_cases, junior, client_for):
    url = reverse("registration:cohort-reference", args=[cohort.pk])
    assert client_for(junior).get(url).status_code == 403
    response = client_for(junior).post(url, {"case": three_cases[0].pk, "reference_pirads": "1"})
    assert response.status_code == 403


def test_every_coordinator_page_has_the_navigation_bar(
    cohort, three_cases, coordinator, client_for
):
    job = RegistrationJob.objects.create(case=three_cases[0], method="initial")
    c = client_for(coordinator)
    for url in (
        reverse("registration:job-detail", args=[job.pk]),
        reverse("registration:job-list"),
        reverse("registration:cohort-reference", args=[cohort.pk]),
    ):
        text = c.get(url).content.decode()
        assert 'href="/cohorts/"' in text and "Reader studies" in text, url
