"""The WSGI fast path answers exactly what Django answers, and only for coordinators. SYNTHETIC."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from dicomweb import fastpath
from mritrus_site.wsgi import application
from registration.models import ImageSeries

pytestmark = pytest.mark.django_db

DICOM = 'multipart/related; type="application/dicom"'
OCTETS = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@pytest.fixture(autouse=True)
def _fresh_caches():  # noqa: ANN202
    fastpath.caches_clear()
    yield
    fastpath.caches_clear()


def fast(path: str, query: str = "", **headers: str) -> tuple[str, dict[str, str], bytes] | None:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    answer = fastpath._answer(environ)
    if answer is None:
        return None
    status, hdrs, body = answer
    return status, dict(hdrs), b"".join(body)


def session_of(client: Client) -> str:
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def mr(cohort) -> ImageSeries:  # noqa: ANN001
    return ImageSeries.objects.get(case__case_code="SYN02")


def test_same_bytes_as_django(mr, cohort, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    cookie = session_of(c)
    inst = mr.instances.first()
    base = f"/dicomweb/studies/{mr.study_instance_uid}/series/{mr.series_instance_uid}/instances/{inst.sop_instance_uid}"
    for path, accept in ((base, DICOM), (f"{base}/frames/1", OCTETS)):
        for root in ("/dicomweb/", f"/dicomweb/cohorts/{cohort.pk}/"):
            url = path.replace("/dicomweb/", root)
            ours = fast(url, cookie=cookie, accept=accept)
            django = c.get(url, HTTP_ACCEPT=accept)
            assert ours is not None and ours[0] == "200 OK"
            assert ours[2] == django.content
            for header in ("Content-Type", "ETag", "Cache-Control"):
                assert ours[1][header] == django[header], header
    query = urlencode(
        {
            "requestType": "WADO",
            "studyUID": mr.study_instance_uid,
            "seriesUID": mr.series_instance_uid,
            "objectUID": inst.sop_instance_uid,
            "contentType": "application/dicom",
        }
    )
    ours = fast("/wado", query, cookie=cookie)
    django = c.get(f"/wado?{query}")
    assert (
        ours is not None
        and ours[2] == django.content
        and ours[1]["Content-Type"] == "application/dicom"
    )
    token = Token.objects.create(user=coordinator)
    assert fast(base, authorization=f"Bearer {token.key}", accept=DICOM) is not None
    # the WADO-URI view takes the session only, so does its fast path
    assert fast("/wado", query, authorization=f"Bearer {token.key}") is None


def test_everything_unusual_falls_through_to_django(
    mr, cohort, coordinator, junior, client_for
) -> None:  # noqa: ANN001
    cookie = session_of(client_for(coordinator))
    inst = mr.instances.first()
    base = f"/dicomweb/studies/{mr.study_instance_uid}/series/{mr.series_instance_uid}/instances/{inst.sop_instance_uid}"
    other = ImageSeries.objects.get(case__case_code="OTHER1")
    assert fast(base, accept=DICOM) is None  # anonymous
    assert fast(base, cookie=session_of(client_for(junior)), accept=DICOM) is None  # reader
    assert fast(base, cookie="sessionid=forged", accept=DICOM) is None
    assert (
        fast(base, cookie=cookie, accept=f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.4.90") is None
    )
    assert fast(base, cookie=cookie, accept="application/dicom+json") is None
    assert fast(base, cookie=cookie, accept=DICOM, if_none_match='"x"') is None
    assert fast(base, cookie=cookie, accept=DICOM, origin="http://elsewhere") is None
    assert (
        fast(
            base.replace(mr.series_instance_uid, other.series_instance_uid),
            cookie=cookie,
            accept=DICOM,
        )
        is None
    )
    assert fast(f"{base}/frames/2", cookie=cookie, accept=OCTETS) is None
    other_cohort = base.replace("/dicomweb/", f"/dicomweb/cohorts/{cohort.pk + 1}/")
    assert fast(other_cohort, cookie=cookie, accept=DICOM) is None


def test_logout_ends_the_cached_decision(mr, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    cookie = session_of(c)
    inst = mr.instances.first()
    url = f"/dicomweb/studies/{mr.study_instance_uid}/series/{mr.series_instance_uid}/instances/{inst.sop_instance_uid}"
    assert fast(url, cookie=cookie, accept=DICOM) is not None
    c.post("/accounts/logout/")
    assert fast(url, cookie=cookie, accept=DICOM) is None  # same process: dropped at once
    c2 = client_for(coordinator)
    assert fast(url, cookie=session_of(c2), accept=DICOM) is not None


def test_the_wsgi_application_serves_through_the_fast_path(mr, coordinator, client_for) -> None:  # noqa: ANN001
    cookie = session_of(client_for(coordinator))
    inst = mr.instances.first()
    url = f"/dicomweb/studies/{mr.study_instance_uid}/series/{mr.series_instance_uid}/instances/{inst.sop_instance_uid}"
    seen = {}

    def start_response(status: str, headers: list) -> None:  # noqa: ANN001
        seen["status"], seen["headers"] = status, dict(headers)

    body = application(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": url,
            "QUERY_STRING": "",
            "HTTP_COOKIE": cookie,
            "HTTP_ACCEPT": DICOM,
        },
        start_response,
    )
    assert seen["status"] == "200 OK" and seen["headers"]["X-Content-Type-Options"] == "nosniff"
    assert b"".join(body).count(b"DICM") == 1


def test_searches_and_metadata_go_to_the_view_without_the_middleware(
    mr, cohort, coordinator, junior, client_for
) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    cookie = session_of(c)
    json_accept = "application/dicom+json"
    for url, query in (
        ("/dicomweb/studies", "PatientID=SYN0*&limit=2"),
        (f"/dicomweb/cohorts/{cohort.pk}/studies/{mr.study_instance_uid}/series", ""),
        (f"/dicomweb/studies/{mr.study_instance_uid}/series/{mr.series_instance_uid}/metadata", ""),
    ):
        ours = fast(url, query, cookie=cookie, accept=json_accept)
        django = c.get(f"{url}?{query}", HTTP_ACCEPT=json_accept)
        assert ours is not None and ours[2] == django.content, url
        assert ours[1]["Content-Type"] == "application/dicom+json"
        assert ours[1].get("Warning") == django.get("Warning")
    assert (
        fast("/dicomweb/studies", cookie=session_of(client_for(junior)), accept=json_accept) is None
    )
    assert (
        fast("/dicomweb/studies", cookie=cookie, accept="application/dicom+xml") is None
    )  # 406: Django's
    assert (
        fast("/dicomweb/cohorts/999999/studies", cookie=cookie, accept=json_accept) is None
    )  # 404: Django's


def test_reader_wado_same_bytes_own_objects_only(coordinator, junior, senior, client_for) -> None:  # noqa: ANN001
    """The blinded reader endpoint: the reader's own view runs on every request (object checks)."""
    from readerstudy import services
    from readerstudy.models import Assignment
    from readerstudy.serving import view_slice_uids
    from registration.models import Cohort
    from tests.readerstudy.builders import case_with_series

    cohort = Cohort.objects.create(name="Synthetic reader cohort", synthetic=True)
    case_with_series(cohort, "SYN-R", reference_pirads=4, seed=3)
    study = services.study_create(
        name="Fast path study",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior, senior],
        washout_days=0,
        seed=5,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    services.study_open(study=study, user=coordinator)
    view = Assignment.objects.get(study=study, reader__user=junior).views.get(role="primary")
    first_slice = view_slice_uids(view=view)[0]  # built from the display grid (serving.py)
    query = urlencode(
        {
            "requestType": "WADO",
            "studyUID": view.study_uid,
            "seriesUID": view.series_uid,
            "objectUID": first_slice,
            "contentType": "application/dicom",
        }
    )
    mine = client_for(junior)
    django = mine.get(f"/reading/wado?{query}")
    assert django.status_code == 200
    for _ in range(2):  # built, then again from the display grid's own cache
        ours = fast("/reading/wado", query, cookie=session_of(mine))
        assert ours is not None and ours[2] == django.content
        assert ours[1]["Cache-Control"] == django["Cache-Control"]
    assert fast("/reading/wado", query, cookie=session_of(client_for(senior))) is None
    assert fast("/reading/wado", query, cookie=session_of(client_for(coordinator))) is None
    services.study_lock(study=study, user=coordinator)
    assert fast("/reading/wado", query, cookie=session_of(mine)) is None  # not cached: at once
