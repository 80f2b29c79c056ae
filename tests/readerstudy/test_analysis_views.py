"""Who may see the analysis page, figures and exports, through the pages and the API."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest
from django.test import Client
from django.urls import reverse

from readerstudy.analysis.exports import EXPORT_FORMATS
from readerstudy.analysis.services import analysis_snapshot_build
from readerstudy.models import AuditEvent, Snapshot
from tests.readerstudy.analysis_study import analysis_study_build


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # noqa: ANN001, ANN202
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study(db, coordinator, junior, senior):  # noqa: ANN001, ANN201
    return analysis_study_build(coordinator=coordinator, readers=[junior, senior], n_cases=16)


@pytest.fixture
def frozen_study(study, coordinator):  # noqa: ANN001, ANN201
    analysis_snapshot_build(study=study, user=coordinator)
    return study


def _urls(pk: int) -> list[str]:
    return [
        reverse("readerstudy:analysis", args=[pk]),
        reverse("readerstudy:analysis-figure", args=[pk, "roc", "svg"]),
        reverse("readerstudy:analysis-export", args=[pk, "reads-csv"]),
        reverse("readerstudy:api-analysis", args=[pk]),
        reverse("readerstudy:api-analysis-export", args=[pk, "results-json"]),
        reverse("readerstudy:api-analysis-figure", args=[pk, "kappa", "png"]),
    ]


@pytest.mark.parametrize("who", ["junior", "senior", "outsider"])
def test_readers_are_refused_everything(request, frozen_study, client_for, who) -> None:  # noqa: ANN001
    client = client_for(request.getfixturevalue(who))
    for url in _urls(frozen_study.pk):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"AUC" not in response.content
    response = client.post(reverse("readerstudy:analysis-snapshot", args=[frozen_study.pk]))
    assert response.status_code == 403
    response = client.post(reverse("readerstudy:api-analysis-snapshot", args=[frozen_study.pk]))
    assert response.status_code == 403


def test_anonymous_is_sent_to_login_or_refused(frozen_study) -> None:  # noqa: ANN001
    client = Client()
    for url in _urls(frozen_study.pk):
        response = client.get(url)
        if "/api/" in url:
            assert response.status_code in (401, 403), url
        else:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_coordinator_is_refused_before_lock_or_snapshot(study, coordinator, client_for) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    page = client.get(reverse("readerstudy:analysis", args=[study.pk]))
    assert page.status_code == 409
    assert b"frozen data" in page.content
    assert b"AUC [95% CI]" not in page.content
    for url in _urls(study.pk)[1:]:
        assert client.get(url).status_code == 404, url


def test_coordinator_snapshot_from_the_page_is_audited(study, coordinator, client_for) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    response = client.post(reverse("readerstudy:analysis-snapshot", args=[study.pk]))
    assert response.status_code == 302
    snapshot = Snapshot.objects.get(study=study)
    assert AuditEvent.objects.filter(
        study=study, action="snapshot", details__sha256=snapshot.sha256
    ).exists()
    page = client.get(reverse("readerstudy:analysis", args=[study.pk]))
    assert page.status_code == 200
    assert snapshot.sha256 in page.content.decode()


def test_draft_study_cannot_be_snapshotted(db, coordinator, client_for) -> None:  # noqa: ANN001
    draft = analysis_study_build(name="Draft one", coordinator=coordinator, status="draft")
    client = client_for(coordinator)
    response = client.post(reverse("readerstudy:api-analysis-snapshot", args=[draft.pk]))
    assert response.status_code == 400
    assert "draft" in response.json()["detail"].lower()
    assert not Snapshot.objects.filter(study=draft).exists()


def test_page_shows_hash_reference_tables_and_inline_figures(
    frozen_study, coordinator, client_for
) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    response = client.get(reverse("readerstudy:analysis", args=[frozen_study.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    snapshot = frozen_study.snapshots.get()
    assert snapshot.sha256 in html
    assert "Clinical PI-RADS (4–5 positive" in html
    assert "SYNTHETIC DATA" in html
    for needle in (
        "AUC [95% CI]",
        "Sens ≥3",
        "Spec ≥4",
        "Likert mean",
        "DeLong",
        "Wilcoxon",
        "Mann–Whitney",
        "MRMC",
        "Missing data",
    ):
        assert needle in html, needle
    # Figures are inlined by static/js/analysis.js from the SVG endpoint.
    assert html.count("data-svg-src=") == 4
    assert "js/analysis.js" in html
    src = html.split('data-svg-src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    figure = client.get(src)
    assert figure.status_code == 200 and figure["Content-Type"] == "image/svg+xml"
    assert "SYNTHETIC" in figure.content.decode()
    for key in EXPORT_FORMATS:
        assert reverse("readerstudy:analysis-export", args=[frozen_study.pk, key]) in html


def test_page_downloads_have_the_right_type_and_parse_back(
    frozen_study, coordinator, client_for
) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    sha = frozen_study.snapshots.get().sha256
    pk = frozen_study.pk

    def get(name: str, *args: str):  # noqa: ANN202
        response = client.get(reverse(f"readerstudy:{name}", args=[pk, *args]))
        assert response.status_code == 200, (name, args)
        assert response["X-Snapshot-SHA256"] == sha
        assert sha[:12] in response["Content-Disposition"]
        return response

    csv_resp = get("analysis-export", "reads-csv")
    assert csv_resp["Content-Type"].startswith("text/csv")
    assert len(pd.read_csv(io.BytesIO(csv_resp.content))) == 2 * 2 * 16
    xlsx = get("analysis-export", "workbook-xlsx")
    assert xlsx["Content-Type"] == EXPORT_FORMATS["workbook-xlsx"].content_type
    assert "About" in openpyxl.load_workbook(io.BytesIO(xlsx.content)).sheetnames
    js = get("analysis-export", "results-json")
    assert js["Content-Type"].startswith("application/json")
    assert json.loads(js.content)["snapshot"]["sha256"] == sha
    imrmc = get("analysis-export", "imrmc")
    assert b"BEGIN DATA:" in imrmc.content
    svg = get("analysis-figure", "mrmc", "svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert svg.content.lstrip().startswith(b"<?xml")
    png = get("analysis-figure", "likert", "png")
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert (
        client.get(reverse("readerstudy:analysis-figure", args=[pk, "roc", "gif"])).status_code
        == 404
    )
    assert client.get(reverse("readerstudy:analysis-export", args=[pk, "nope"])).status_code == 404


def test_api_results_exports_and_figures(frozen_study, coordinator, client_for) -> None:  # noqa: ANN001
    client = client_for(coordinator)
    pk = frozen_study.pk
    sha = frozen_study.snapshots.get().sha256
    response = client.get(reverse("readerstudy:api-analysis", args=[pk]))
    assert response.status_code == 200
    body = response.json()
    assert body["snapshot"]["sha256"] == sha
    assert body["format"] == "mritrus.analysis/1"
    response = client.get(
        reverse("readerstudy:api-analysis-export", args=[pk, "mrmc-long-csv"]),
        HTTP_ACCEPT="text/csv",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(b"reader,treatment,case,truth,rating")
    response = client.get(reverse("readerstudy:api-analysis-figure", args=[pk, "roc", "png"]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    # An older snapshot stays addressable; a newer one becomes the default.
    first = frozen_study.snapshots.get()
    response = client.post(reverse("readerstudy:api-analysis-snapshot", args=[pk]))
    assert response.status_code == 201
    assert response.json()["sha256"] == sha  # same reads, same hash
    old = client.get(reverse("readerstudy:api-analysis", args=[pk]) + f"?snapshot={first.pk}")
    assert old.status_code == 200


def test_schema_documents_the_analysis_api(db, coordinator, client_for) -> None:  # noqa: ANN001
    response = client_for(coordinator).get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/readerstudy/studies/{id}/analysis/" in text
    assert "/api/readerstudy/studies/{id}/analysis/exports/{key}/" in text


def test_locked_study_without_reads_says_why_instead_of_crashing(
    db, coordinator, client_for
) -> None:  # noqa: ANN001
    from readerstudy import services

    empty = analysis_study_build(
        name="Nothing read",
        coordinator=coordinator,
        n_cases=4,
        skip={(r, a, c) for r in range(2) for a in ("original", "registered") for c in range(4)},
    )
    services.study_lock(study=empty, user=coordinator)
    client = client_for(coordinator)
    page = client.get(reverse("readerstudy:analysis", args=[empty.pk]))
    assert page.status_code == 409
    assert "nothing to analyse" in page.content.decode()
    for url in _urls(empty.pk)[1:]:
        response = client.get(url)
        assert response.status_code == 409, url
        assert b"nothing to analyse" in response.content


def test_a_snapshot_of_another_study_is_not_served(frozen_study, coordinator, client_for) -> None:  # noqa: ANN001
    other = analysis_study_build(name="Other study", coordinator=coordinator, n_cases=6)
    foreign = analysis_snapshot_build(study=other, user=coordinator)
    client = client_for(coordinator)
    for url in _urls(frozen_study.pk):
        assert client.get(f"{url}?snapshot={foreign.pk}").status_code == 404, url
    assert client.get(_urls(frozen_study.pk)[0] + "?snapshot=abc").status_code == 404
