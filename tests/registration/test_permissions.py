"""Every page and endpoint of registration/ (not the job ones) for each role."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from registration.models import Case, ImportRun

from .factories import synthetic_case, synthetic_series

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(tmp_path: Path) -> dict:
    case = synthetic_case()
    series = synthetic_series(case)
    inst = series.instances.first()
    run = ImportRun.objects.create(source_name="x.zip", cohort=case.cohort, status="done")
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "nothing")
    return {"case": case, "series": series, "instance": inst, "run": run, "archive": archive}


def _requests(s: dict) -> list[tuple[str, str, dict]]:
    series, inst, case = s["series"], s["instance"], s["case"]
    wado = {
        "requestType": "WADO",
        "studyUID": series.study_instance_uid,
        "seriesUID": series.series_instance_uid,
        "objectUID": inst.sop_instance_uid,
        "contentType": "application/dicom",
    }
    return [
        ("get", reverse("registration:cohort-list"), {}),
        ("get", reverse("registration:cohort-upload"), {}),
        ("get", reverse("registration:cohort-detail", args=[case.cohort_id]), {}),
        ("get", reverse("registration:case-detail", args=[case.pk]), {}),
        ("get", reverse("registration:import-detail", args=[s["run"].pk]), {}),
        ("get", reverse("registration:series-thumbnail", args=[series.pk]), {}),
        ("get", reverse("registration:series-manifest", args=[series.pk]), {}),
        ("get", reverse("registration:wado"), wado),
        ("get", "/api/cohorts/", {}),
        ("get", f"/api/cohorts/{case.cohort_id}/", {}),
        ("get", "/api/cases/", {}),
        ("get", f"/api/cases/{case.pk}/", {}),
        ("get", "/api/series/", {}),
        ("get", f"/api/series/{series.pk}/", {}),
        ("get", "/api/imports/", {}),
        ("get", f"/api/imports/{s['run'].pk}/", {}),
    ]


def _is_api(url: str) -> bool:
    return url.startswith("/api/")


def test_anonymous_is_sent_to_login_or_refused(client: Client, stored: dict) -> None:
    for method, url, params in _requests(stored):
        response = getattr(client, method)(url, params)
        if _is_api(url):
            assert response.status_code in (401, 403), url
        else:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    response = client.post(reverse("registration:case-delete", args=[stored["case"].pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post("/api/cohorts/upload/", {}).status_code in (401, 403)
    assert Case.objects.count() == 1


@pytest.mark.parametrize("role", ["outsider", "junior", "senior"])
def test_readers_get_403_everywhere(role: str, request, client_for, stored: dict) -> None:  # noqa: ANN001
    client = client_for(request.getfixturevalue(role))
    for method, url, params in _requests(stored):
        assert getattr(client, method)(url, params).status_code == 403, url
    assert (
        client.post(reverse("registration:case-delete", args=[stored["case"].pk])).status_code
        == 403
    )
    with stored["archive"].open("rb") as fh:
        assert (
            client.post(reverse("registration:cohort-upload"), {"archive": fh}).status_code == 403
        )
    with stored["archive"].open("rb") as fh:
        assert client.post("/api/cohorts/upload/", {"archive": fh}).status_code == 403
    assert Case.objects.count() == 1 and ImportRun.objects.count() == 1


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_coordinators_and_admins_allowed(role: str, request, client_for, stored: dict) -> None:  # noqa: ANN001
    client = client_for(request.getfixturevalue(role))
    for method, url, params in _requests(stored):
        assert getattr(client, method)(url, params).status_code == 200, url
    with stored["archive"].open("rb") as fh:
        response = client.post("/api/cohorts/upload/", {"archive": fh})
    # The archive holds no DICOM and no manifest: refused with the reason, nothing stored.
    assert (
        response.status_code == 422
        and "neither a manifest cohort nor DICOM" in response.json()["error"]
    )
    response = client.post(reverse("registration:case-delete", args=[stored["case"].pk]))
    assert response.status_code == 302 and Case.objects.count() == 0


def test_home_redirects_coordinator_to_cohorts(client_for, coordinator) -> None:  # noqa: ANN001
    response = client_for(coordinator).get("/")
    assert response.status_code == 302 and response["Location"] == reverse(
        "registration:cohort-list"
    )


def test_token_auth_on_api(client: Client, coordinator, junior, stored: dict) -> None:  # noqa: ANN001
    token = Token.objects.create(user=coordinator)
    response = client.get("/api/cases/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200 and response.json()["results"][0]["case_code"] == "SYN01"
    reader_token = Token.objects.create(user=junior)
    assert (
        client.get("/api/cases/", HTTP_AUTHORIZATION=f"Token {reader_token.key}").status_code == 403
    )


def test_object_checks(client_for, coordinator, stored: dict) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    series, inst = stored["series"], stored["instance"]
    assert client.get(reverse("registration:case-detail", args=[9999])).status_code == 404
    assert client.get(reverse("registration:series-thumbnail", args=[9999])).status_code == 404
    # WADO answers only when study, series and object UIDs all belong together.
    other = synthetic_series(synthetic_case(code="SYN02"))
    base = {"requestType": "WADO", "contentType": "application/dicom"}
    mismatched = {
        **base,
        "studyUID": other.study_instance_uid,
        "seriesUID": series.series_instance_uid,
        "objectUID": inst.sop_instance_uid,
    }
    assert client.get(reverse("registration:wado"), mismatched).status_code == 404
    good = {
        **base,
        "studyUID": series.study_instance_uid,
        "seriesUID": series.series_instance_uid,
        "objectUID": inst.sop_instance_uid,
    }
    assert client.get(reverse("registration:wado"), {**good, "requestType": "X"}).status_code == 400
    assert (
        client.get(reverse("registration:wado"), {**good, "contentType": "image/jpeg"}).status_code
        == 406
    )
    assert (
        client.get(
            reverse("registration:wado"), {k: v for k, v in good.items() if k != "objectUID"}
        ).status_code
        == 400
    )


def test_api_filters_and_schema(client_for, coordinator, stored: dict) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    other = synthetic_case(code="SYN02", cohort_name="Other synthetic cohort")
    cases = client.get("/api/cases/", {"cohort": stored["case"].cohort_id}).json()["results"]
    assert [c["case_code"] for c in cases] == ["SYN01"]
    series = client.get("/api/series/", {"case": stored["case"].pk}).json()["results"]
    assert len(series) == 1 and series[0]["instance_count"] == 6
    assert client.get("/api/series/", {"case": other.pk}).json()["results"] == []
    schema = client.get("/api/schema/").content.decode()
    for path in ("/api/cohorts/", "/api/cases/", "/api/series/", "/api/cohorts/upload/"):
        assert path in schema


def test_admin_lists_every_registration_model(client: Client, stored: dict) -> None:
    from accounts.factories import UserFactory

    boss = UserFactory(username="boss", role="admin", reader_level="", years_experience=None)
    boss.is_staff = boss.is_superuser = True
    boss.save()
    client.force_login(boss)
    for model in ("cohort", "case", "imageseries", "dicominstance", "importrun", "registrationjob"):
        assert client.get(f"/admin/registration/{model}/").status_code == 200, model
    assert client.get(f"/admin/registration/case/{stored['case'].pk}/change/").status_code == 200
