"""Coordinator and reader pages, the reader JSON endpoints, the DRF API and the demo study."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from demo.study import demo_study_create
from readerstudy import read_services
from readerstudy.models import Assignment, AuditEvent, Read, ReaderStudy
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db


def test_home_redirects_reader_to_worklist(junior, client_for):
    response = client_for(junior).get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse(
        "readerstudy:worklist-home"
    )


def test_coordinator_creates_generates_opens_locks_through_pages(
    cohort, three_cases, coordinator, junior, senior, client_for
):
    c = client_for(coordinator)
    assert c.get(reverse("readerstudy:study-create")).status_code == 200
    bad = c.post(reverse("readerstudy:study-create"), {"name": "x", "cohort": cohort.pk})
    assert bad.status_code == 200 and not ReaderStudy.objects.exists()
    response = c.post(
        reverse("readerstudy:study-create"),
        {
            "name": "Page study",
            "cohort": cohort.pk,
            "arm_kinds": ["registered", "original"],
            "readers": [junior.pk, senior.pk],
            "washout_days": 0,
            "reference_standard": "biopsy",
        },
    )
    study = ReaderStudy.objects.get(name="Page study")
    assert response["Location"] == reverse("readerstudy:study-detail", args=[study.pk])
    assert list(study.arms.values_list("kind", flat=True)) == ["original", "registered"]
    c.post(reverse("readerstudy:study-generate", args=[study.pk]))
    c.post(reverse("readerstudy:study-open", args=[study.pk]))
    page = c.get(reverse("readerstudy:study-detail", args=[study.pk])).content.decode()
    assert "SYN-C left out" in page and "Open" in page
    study.refresh_from_db()
    assert study.status == "open" and study.assignments.count() == 8
    c.post(reverse("readerstudy:study-lock", args=[study.pk]))
    study.refresh_from_db()
    assert study.status == "locked" and study.snapshots.count() == 1
    assert c.get(reverse("readerstudy:study-list")).status_code == 200


def test_reader_worklist_viewer_draft_submit_next(open_study, junior, client_for):
    c = client_for(junior)
    page = c.get(reverse("readerstudy:worklist-home")).content.decode()
    assert "Case 1 of 2" in page and "Session 1 of 3" in page
    first, second = Assignment.objects.filter(reader__user=junior, session=1).order_by("position")
    assert reverse("readerstudy:viewer", args=[first.token]) in page
    viewer = c.get(reverse("readerstudy:viewer", args=[first.token]))
    assert viewer.status_code == 200 and "Case 1 of 2" in viewer.content.decode()
    assert AuditEvent.objects.filter(assignment=first, action="view").count() == 1
    draft = c.post(
        reverse("readerstudy:read-draft", args=[first.token]),
        data=json.dumps({"pirads": 3, "active_seconds": 2.5}),
        content_type="application/json",
    )
    assert draft.status_code == 200 and draft.json()["status"] == "draft"
    bad = c.post(
        reverse("readerstudy:read-submit", args=[first.token]),
        data=json.dumps({"pirads": 9}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "pirads" in bad.json()["errors"]
    garbage = c.post(
        reverse("readerstudy:read-draft", args=[first.token]),
        data="not json",
        content_type="application/json",
    )
    assert garbage.status_code == 400
    done = c.post(
        reverse("readerstudy:read-submit", args=[first.token]),
        data=json.dumps({**complete(), "active_seconds": 4}),
        content_type="application/json",
    )
    assert done.json()["next_url"] == reverse("readerstudy:viewer", args=[second.token])
    read = Read.objects.get(assignment=first)
    assert read.status == "submitted" and read.active_seconds == pytest.approx(6.5)
    assert "Case 2 of 2" in c.get(reverse("readerstudy:worklist-home")).content.decode()
    again = c.post(
        reverse("readerstudy:read-draft", args=[first.token]),
        data=json.dumps({"pirads": 1}),
        content_type="application/json",
    )
    assert again.status_code == 400
    # a submitted read opens read-only
    assert (
        '"readOnly": true'
        in c.get(reverse("readerstudy:viewer", args=[first.token])).content.decode()
    )


def test_coordinator_reopen_through_page_is_audited(open_study, junior, coordinator, client_for):
    a = Assignment.objects.filter(reader__user=junior, session=1).first()
    read = read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    c = client_for(coordinator)
    url = reverse("readerstudy:read-reopen", args=[open_study.pk, read.pk])
    c.post(url, {"reason": ""})
    read.refresh_from_db()
    assert read.status == "submitted"
    c.post(url, {"reason": "wrong side"})
    read.refresh_from_db()
    assert read.status == "draft"
    assert AuditEvent.objects.filter(action="reopen", details__reason="wrong side").exists()


def test_api_study_lifecycle_and_reader_reads(
    cohort, three_cases, coordinator, junior, senior, client_for
):
    c = client_for(coordinator)
    created = c.post(
        reverse("readerstudy:api-study-list"),
        data={
            "name": "API study",
            "cohort": cohort.pk,
            "arm_kinds": ["original", "registered"],
            "readers": [junior.pk, senior.pk],
            "washout_days": 0,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    bad = c.post(
        reverse("readerstudy:api-study-list"),
        data={"name": "API study", "cohort": cohort.pk, "arm_kinds": ["x"], "readers": []},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "arm_kinds" in bad.json()
    assert c.post(reverse("readerstudy:api-study-open", args=[pk])).status_code == 400
    generated = c.post(reverse("readerstudy:api-study-generate", args=[pk])).json()
    assert any("SYN-C" in n for n in generated["generation_notes"])
    assert c.post(reverse("readerstudy:api-study-open", args=[pk])).json()["status"] == "open"

    r = client_for(junior)
    items = r.get(reverse("readerstudy:api-worklist-list")).json()
    assert len(items) == 2 and set(items[0]) == {
        "token",
        "study",
        "reading_code",
        "session",
        "position",
        "status",
    }
    token = items[0]["token"]
    url = reverse("readerstudy:api-worklist-submit", args=[token])
    assert r.post(url, data={"pirads": 4}, content_type="application/json").status_code == 400
    ok = r.post(url, data={**complete(), "active_seconds": 3}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["status"] == "submitted"
    assert r.get(reverse("readerstudy:api-read-list")).json()["count"] == 1
    progress = c.get(reverse("readerstudy:api-study-progress", args=[pk])).json()
    assert sum(row["read"] for row in progress) == 1
    read_pk = c.get(reverse("readerstudy:api-read-list")).json()["results"][0]["id"]
    reopened = c.post(
        reverse("readerstudy:api-read-reopen", args=[read_pk]),
        data={"reason": "api"},
        content_type="application/json",
    )
    assert reopened.status_code == 200 and reopened.json()["status"] == "draft"
    snap = c.post(reverse("readerstudy:api-study-snapshot", args=[pk]))
    assert snap.status_code == 201 and len(snap.json()["sha256"]) == 64


def test_openapi_schema_documents_reader_study_endpoints(coordinator, client_for):
    schema = client_for(coordinator).get(reverse("api-schema"), {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in (
        "/api/readerstudy/studies/",
        "/api/readerstudy/studies/{id}/generate/",
        "/api/readerstudy/studies/{id}/progress/",
        "/api/readerstudy/worklist/",
        "/api/readerstudy/worklist/{token}/submit/",
        "/api/readerstudy/reads/",
        "/api/readerstudy/reads/{id}/reopen/",
    ):
        assert path in paths, path


def test_demo_study_is_open_idempotent_and_crossed(
    cohort, three_cases, coordinator, junior, senior
):
    study = demo_study_create(cohort=cohort, coordinator=coordinator, readers=[junior, senior])
    assert study.status == "open" and study.washout_days == 0
    assert list(study.arms.values_list("kind", flat=True)) == ["original", "registered", "fused"]
    assert study.assignments.count() == 2 * 3 * 2
    again = demo_study_create(cohort=cohort, coordinator=coordinator, readers=[junior, senior])
    assert again.pk == study.pk and ReaderStudy.objects.count() == 1
