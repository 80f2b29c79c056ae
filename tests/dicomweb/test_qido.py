"""QIDO-RS: standard keys, limit/offset, includefield, DICOM JSON; scope and roles. SYNTHETIC data."""

from __future__ import annotations

import base64

import pytest
from rest_framework.authtoken.models import Token

from registration.models import ImageSeries

pytestmark = pytest.mark.django_db

ROOT = "/dicomweb"
JSON = {"HTTP_ACCEPT": "application/dicom+json"}


def values(item: dict, tag: str) -> list:
    return item.get(tag, {}).get("Value", [])


def test_studies_are_the_stored_studies_with_pseudonyms(cohort, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    response = c.get(f"{ROOT}/cohorts/{cohort.pk}/studies", **JSON)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    studies = response.json()
    expected = set(
        ImageSeries.objects.filter(case__cohort=cohort).values_list("study_instance_uid", flat=True)
    )
    assert {values(s, "0020000D")[0] for s in studies} == expected
    patients = {values(s, "00100020")[0] for s in studies}
    assert patients == {"SYN01", "SYN02"}
    first = studies[0]
    assert first["00100010"]["vr"] == "PN" and values(first, "00100010")[0]["Alphabetic"]
    assert values(first, "00201208") and values(first, "00081190")[0].startswith(
        "http://testserver/"
    )
    # every cohort at the root, one cohort under /cohorts/<id>/
    assert len(c.get(f"{ROOT}/studies", **JSON).json()) == len(studies) + 1


def test_query_keys_tags_and_ranges(cohort, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    base = f"{ROOT}/cohorts/{cohort.pk}"
    syn01 = c.get(f"{base}/studies?PatientID=SYN01").json()
    assert len(syn01) == 2 and {values(s, "00080061")[0] for s in syn01} == {"MR", "US"}
    assert len(c.get(f"{base}/studies?00100020=SYN0*").json()) == 3  # tag form, wildcard
    assert len(c.get(f"{base}/studies?ModalitiesInStudy=US").json()) == 1
    assert len(c.get(f"{base}/studies?PatientName=syn02").json()) == 1  # PN: case-insensitive
    assert c.get(f"{base}/studies?StudyDate=19000101-19000102").json() == []
    uid = values(syn01[0], "0020000D")[0]
    assert len(c.get(f"{base}/studies?StudyInstanceUID={uid},1.2.3").json()) == 1


def test_limit_offset_and_the_more_results_warning(cohort, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    base = f"{ROOT}/cohorts/{cohort.pk}/studies"
    everything = [values(s, "0020000D")[0] for s in c.get(base).json()]
    first = c.get(f"{base}?limit=2")
    assert [values(s, "0020000D")[0] for s in first.json()] == everything[:2]
    assert "more results" in first["Warning"]
    rest = c.get(f"{base}?limit=2&offset=2")
    assert [values(s, "0020000D")[0] for s in rest.json()] == everything[2:]
    assert "Warning" not in rest
    assert c.get(f"{base}?limit=-1").status_code == 400
    assert c.get(f"{base}?NotAKeyword=1").status_code == 400
    ignored = c.get(f"{base}?PatientAge=040Y")
    assert ignored.status_code == 200 and "not supported" in ignored["Warning"]


def test_includefield_and_levels(cohort, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    base = f"{ROOT}/cohorts/{cohort.pk}"
    study = c.get(f"{base}/studies?PatientID=SYN02").json()[0]
    study_uid = values(study, "0020000D")[0]
    series = c.get(f"{base}/studies/{study_uid}/series").json()
    assert len(series) == 1
    item = series[0]
    assert values(item, "00080060") == ["MR"] and values(item, "00201209") == [4]
    assert "00100020" not in item  # patient attributes only when asked for
    asked = c.get(f"{base}/studies/{study_uid}/series?includefield=PatientID").json()[0]
    assert values(asked, "00100020") == ["SYN02"]
    everything = c.get(f"{base}/studies/{study_uid}/series?includefield=all").json()[0]
    assert values(everything, "00100020") == ["SYN02"] and "00080020" in everything
    series_uid = values(item, "0020000E")[0]
    instances = c.get(f"{base}/studies/{study_uid}/series/{series_uid}/instances").json()
    assert [values(i, "00200013")[0] for i in instances] == [1, 2, 3, 4]
    assert values(instances[0], "00280010") == [12] and values(instances[0], "00280011") == [16]
    assert len(c.get(f"{base}/instances?SeriesInstanceUID={series_uid}").json()) == 4
    assert len(c.get(f"{base}/series?Modality=US").json()) == 1
    assert c.get(f"{base}/studies", HTTP_ACCEPT="application/dicom+xml").status_code == 406


def test_roles_and_credentials(cohort, coordinator, admin, junior, client, client_for) -> None:  # noqa: ANN001
    url = f"{ROOT}/studies"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Basic")
    for method in ("get", "post", "put", "delete"):
        assert getattr(client_for(junior), method)(url).status_code == 403
    assert client_for(admin).get(url).status_code == 200
    assert client_for(coordinator).get(f"{ROOT}/cohorts/999999/studies").status_code == 404
    token = Token.objects.create(user=coordinator)
    for scheme in ("Token", "Bearer"):
        assert client.get(url, HTTP_AUTHORIZATION=f"{scheme} {token.key}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    reader_token = Token.objects.create(user=junior)
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {reader_token.key}").status_code == 403
    coordinator.set_password("pw-for-basic")
    coordinator.save()
    good = base64.b64encode(b"t_coordinator:pw-for-basic").decode()
    bad = base64.b64encode(b"t_coordinator:wrong").decode()
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {good}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {good}").status_code == 200  # cached
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {bad}").status_code == 401
    coordinator.is_active = False
    coordinator.save()
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {good}").status_code == 401


def test_expired_token_and_axes_lockout(cohort, coordinator, client, settings) -> None:  # noqa: ANN001
    """DICOMweb keeps the API's rules: tokens expire (MRITRUS_TOKEN_TTL_HOURS), and a Basic
    password goes through django-axes (a locked-out pair is refused, the right password too)."""
    from datetime import timedelta

    from django.utils import timezone

    from dicomweb import auth

    url = f"{ROOT}/studies"
    token = Token.objects.create(user=coordinator)
    Token.objects.filter(pk=token.pk).update(
        created=timezone.now() - timedelta(hours=settings.MRITRUS_TOKEN_TTL_HOURS + 1)
    )
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 401
    assert not Token.objects.filter(pk=token.pk).exists()  # gone for good

    auth._basic_cache.clear()
    coordinator.set_password("pw-for-basic")
    coordinator.save()
    good = base64.b64encode(b"t_coordinator:pw-for-basic").decode()
    bad = base64.b64encode(b"t_coordinator:wrong").decode()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert client.get(url, HTTP_AUTHORIZATION=f"Basic {bad}").status_code in (401, 429)
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {good}").status_code in (401, 429)
