"""URL audit: every URL pattern of the project, enumerated from the resolver, against the security bar.

1. Every page and endpoint needs a login (anonymous: redirect to the login page, 401, 403 or
   405; never 2xx), except the login page and the token endpoint (which are the login itself).
2. Readers never reach a coordinator/admin URL; coordinators never reach the reader endpoints;
   coordinators see no results before the study is locked or snapshotted.
3. A reader who does not own an assignment gets 404 on its case, series, images and read
   (reader endpoints, their DRF ``.json`` twins included); readers' reads only of open studies.
4. (Lightly; tests/readerstudy/test_blinding.py is the full check) the owner's answers on those
   URLs carry no case code, cohort name, reference or stored UID.
5. The API schema and docs need a login (they are in the table like every other URL).

The table below classifies every named URL; a URL added to the project without a row here fails
``test_every_url_is_classified``, so nothing new escapes the audit. All image data is SYNTHETIC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from readerstudy import read_services, services
from readerstudy.analysis import services as analysis_services
from readerstudy.models import Assignment, Read, ReaderStudy
from readerstudy.serving import view_slice_uids
from registration.models import Case, Cohort, ImportRun, RegistrationJob
from tests.readerstudy.builders import case_with_series, complete

pytestmark = pytest.mark.django_db

PUBLIC = "public"  # the login itself
ANY = "any"  # any logged-in user (home redirects by role; schema; reads filtered per user)
COORD = "coordinator"  # coordinators and admins only
READER = "reader"  # readers only, and only for their own open assignments

METHODS = ("get", "post", "put", "patch", "delete")

# name -> (audience, what <pk> is, what <token> is)
ROUTES: dict[str, tuple[str, str | None, str | None]] = {
    "home": (ANY, None, None),
    "login": (PUBLIC, None, None),
    "logout": (ANY, None, None),
    "api-token": (PUBLIC, None, None),
    "api-token-revoke": (ANY, None, None),
    "api-schema": (ANY, None, None),
    "api-docs": (ANY, None, None),
    # registration: cohorts, cases, series, WADO, API
    "registration:cohort-list": (COORD, None, None),
    "registration:cohort-upload": (COORD, None, None),
    "registration:cohort-detail": (COORD, "cohort", None),
    "registration:cohort-reference": (COORD, "cohort", None),
    "registration:import-detail": (COORD, "import", None),
    "registration:import-progress": (COORD, None, None),
    "registration:case-detail": (COORD, "case", None),
    "registration:case-delete": (COORD, "case", None),
    "registration:series-thumbnail": (COORD, "series", None),
    "registration:series-manifest": (COORD, "series", None),
    "registration:wado": (COORD, None, None),
    "registration:api-cohort-upload": (COORD, None, None),
    "registration:api-cohort-list": (COORD, None, None),
    "registration:api-cohort-detail": (COORD, "cohort", None),
    "registration:api-case-list": (COORD, None, None),
    "registration:api-case-detail": (COORD, "case", None),
    "registration:api-series-list": (COORD, None, None),
    "registration:api-series-detail": (COORD, "series", None),
    "registration:api-import-list": (COORD, None, None),
    "registration:api-import-detail": (COORD, "import", None),
    # registration jobs
    "registration:job-list": (COORD, None, None),
    "registration:job-detail": (COORD, "job", None),
    "registration:job-status-json": (COORD, "job", None),
    "registration:job-cancel": (COORD, "job", None),
    "registration:job-retry": (COORD, "job", None),
    "registration:job-qc": (COORD, "job", None),
    "registration:case-register": (COORD, "case", None),
    "registration:cohort-register-all": (COORD, "cohort", None),
    "registration:cohort-jobs-json": (COORD, "cohort", None),
    "registration:api-job-list": (COORD, None, None),
    "registration:api-job-register-cohort": (COORD, None, None),
    "registration:api-job-detail": (COORD, "job", None),
    "registration:api-job-cancel": (COORD, "job", None),
    "registration:api-job-retry": (COORD, "job", None),
    # reader studies: coordinator pages and API (the study design)
    "readerstudy:study-list": (COORD, None, None),
    "readerstudy:study-create": (COORD, None, None),
    "readerstudy:study-detail": (COORD, "study", None),
    "readerstudy:study-generate": (COORD, "study", None),
    "readerstudy:study-open": (COORD, "study", None),
    "readerstudy:study-lock": (COORD, "study", None),
    "readerstudy:study-snapshot": (COORD, "study", None),
    "readerstudy:read-reopen": (COORD, "study", None),
    "readerstudy:api-study-list": (COORD, None, None),
    "readerstudy:api-study-detail": (COORD, "study", None),
    "readerstudy:api-study-generate": (COORD, "study", None),
    "readerstudy:api-study-lock": (COORD, "study", None),
    "readerstudy:api-study-open": (COORD, "study", None),
    "readerstudy:api-study-progress": (COORD, "study", None),
    "readerstudy:api-study-snapshot": (COORD, "study", None),
    "readerstudy:api-read-reopen": (COORD, "read", None),
    # analysis and exports
    "readerstudy:analysis": (COORD, "study", None),
    "readerstudy:analysis-snapshot": (COORD, "study", None),
    "readerstudy:analysis-figure": (COORD, "study", None),
    "readerstudy:analysis-export": (COORD, "study", None),
    "readerstudy:api-analysis": (COORD, "study", None),
    "readerstudy:api-analysis-snapshot": (COORD, "study", None),
    "readerstudy:api-analysis-export": (COORD, "study", None),
    "readerstudy:api-analysis-figure": (COORD, "study", None),
    # reader endpoints
    "readerstudy:worklist-home": (READER, None, None),
    "readerstudy:viewer": (READER, None, "assignment"),
    "readerstudy:read-draft": (READER, None, "assignment"),
    "readerstudy:viewer-preview": (READER, None, "assignment"),
    "readerstudy:read-submit": (READER, None, "assignment"),
    "readerstudy:series-manifest": (READER, None, "view"),
    "readerstudy:wado": (READER, None, None),
    "readerstudy:api-worklist-list": (READER, None, None),
    "readerstudy:api-worklist-detail": (READER, None, "assignment"),
    "readerstudy:api-worklist-draft": (READER, None, "assignment"),
    "readerstudy:api-worklist-submit": (READER, None, "assignment"),
    # readers: their own reads; coordinators: all reads, scores hidden until frozen
    "readerstudy:api-read-list": (ANY, None, None),
    "readerstudy:api-read-detail": (ANY, "read", None),
    "readerstudy:api-root": (ANY, None, None),
    # DICOMweb (PS3.18): every cohort at /dicomweb/, one cohort at /dicomweb/cohorts/<id>/
    **{
        f"dicomweb:{prefix}{name}": (COORD, None, None)
        for prefix in ("", "cohort-")
        for name in (
            "studies",
            "series-search",
            "instances-search",
            "study",
            "study-metadata",
            "study-series-search",
            "study-instances-search",
            "series",
            "series-metadata",
            "series-instances-search",
            "instance",
            "instance-metadata",
            "instance-rendered",
            "frames",
            "frames-rendered",
            "bulkdata",
        )
    },
}

FIXED_KWARGS = {
    "key_figure": "roc",
    "key_export": "reads-csv",
    "fmt": "svg",
    "name": "checkerboard",
    "cohort": 999999,
    "study": "1.2.3",
    "series": "1.2.3.4",
    "instance": "1.2.3.4.5",
    "frames": "1",
    "tag": "7FE00010",
}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    params: tuple[str, ...]

    @property
    def audience(self) -> str:
        return ROUTES[self.name][0]


def _walk(patterns: list[Any], prefix: str = "", ns: str | None = None) -> Iterator[Route]:
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            if route.startswith("admin/"):
                continue
            inner = p.namespace
            yield from _walk(
                p.url_patterns, route, f"{ns}:{inner}" if ns and inner else (inner or ns)
            )
        elif isinstance(p, URLPattern):
            if route.startswith(("admin/", "static/", settings.STATIC_URL.lstrip("/"))):
                continue
            params = set(p.pattern.regex.groupindex) | set(getattr(p.pattern, "converters", {}))
            assert p.name, f"unnamed URL pattern {route!r}: name it so it can be audited"
            yield Route(f"{ns}:{p.name}" if ns else p.name, route, tuple(sorted(params)))


ALL_ROUTES = sorted(set(_walk(get_resolver().url_patterns)), key=lambda r: (r.name, r.pattern))


# --- a small world with one object of every kind ----------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):  # noqa: ANN001, ANN202
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(coordinator, junior, senior) -> dict[str, Any]:  # noqa: ANN001
    """An open SYNTHETIC study: junior has submitted one read; one case has a queued job."""
    cohort = Cohort.objects.create(name="Synthetic audit cohort", synthetic=True)
    case = case_with_series(cohort, "SYN-A", reference_pirads=5, seed=1)
    case_with_series(cohort, "SYN-B", reference_pirads=2, seed=2)
    study = services.study_create(
        name="Audit study",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original", "registered"],
        readers=[junior, senior],
        washout_days=0,
        seed=99,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    study = services.study_open(study=study, user=coordinator)
    mine = (
        Assignment.objects.filter(study=study, reader__user=junior, session=1)
        .order_by("position")
        .first()
    )
    read = read_services.read_submit(
        assignment=mine, user=junior, data=complete(), active_seconds=1
    )
    view = mine.views.get(role="primary")
    series = case.series.filter(kind="original", modality="MR_T2").get()
    instance = series.instances.first()
    remapped = view_slice_uids(view=view)[0]
    return {
        "cohort": cohort,
        "case": case,
        "series": series,
        "import": ImportRun.objects.create(source_name="x.zip", cohort=cohort, status="done"),
        "job": RegistrationJob.objects.create(case=case, method="initial"),
        "study": study,
        "read": read,
        "assignment": mine,
        "view": view,
        "wado": {
            "requestType": "WADO",
            "studyUID": series.study_instance_uid,
            "seriesUID": series.series_instance_uid,
            "objectUID": instance.sop_instance_uid,
            "contentType": "application/dicom",
        },
        "reader_wado": {
            "requestType": "WADO",
            "studyUID": view.study_uid,
            "seriesUID": view.series_uid,
            "objectUID": remapped,
            "contentType": "application/dicom",
        },
    }


@pytest.fixture
def frozen(world, coordinator) -> dict[str, Any]:  # noqa: ANN001
    """The same world with a snapshot: results exist, so only the role checks stand in the way."""
    analysis_services.snapshot_create(study=world["study"], user=coordinator)
    return world


def url_for(route: Route, w: dict[str, Any] | None) -> str:
    """A concrete URL of ``route``: real objects from ``w``, or nonexistent ones when None."""
    _, pk_kind, token_kind = ROUTES[route.name]
    kwargs: dict[str, Any] = {}
    for param in route.params:
        if param == "pk":
            kwargs[param] = w[pk_kind].pk if w else 999999
        elif param == "read_pk":
            kwargs[param] = w["read"].pk if w else 999999
        elif param == "token":
            kwargs[param] = w[token_kind].token if w else "no-such-token"
        elif param == "key":
            kwargs[param] = FIXED_KWARGS["key_figure" if "figure" in route.name else "key_export"]
        elif param == "format":
            kwargs[param] = "json"
        else:
            kwargs[param] = FIXED_KWARGS[param]
    url = reverse(route.name, kwargs=kwargs)
    match = resolve(url.split("?")[0])
    assert match.view_name == route.name, (url, match.view_name)
    query = ""
    if route.name in ("registration:wado", "readerstudy:wado"):
        key = "wado" if route.name == "registration:wado" else "reader_wado"
        params = (
            w[key]
            if w
            else {"requestType": "WADO", "studyUID": "1", "seriesUID": "2", "objectUID": "3"}
        )
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url + query


def _call(client: Client, method: str, url: str) -> Any:
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, data="{}", content_type="application/json")


def _refused_anonymous(response: Any) -> bool:
    if response.status_code in (301, 302, 303, 307, 308):
        return response["Location"].split("?")[0] == resolve_url(settings.LOGIN_URL)
    return response.status_code in (401, 403, 405)


# --- the enumeration itself -----------------------------------------------------------------------


def test_every_url_is_classified() -> None:
    names = {r.name for r in ALL_ROUTES}
    assert names - set(ROUTES) == set(), "URL(s) not in the audit table: classify them"
    assert set(ROUTES) - names == set(), "audit table lists URL(s) the project no longer has"


# --- rule 1: login everywhere ---------------------------------------------------------------------


def test_anonymous_is_refused(frozen: dict[str, Any], client: Client) -> None:
    """Every method on every URL, with real objects and with nonexistent ones."""
    failures = []
    checked = 0
    for route in (r for r in ALL_ROUTES if r.audience != PUBLIC):
        for w in (frozen, None):
            url = url_for(route, w)
            answers = {m: _call(client, m, url) for m in METHODS}
            checked += 1
            for method, response in answers.items():
                if not _refused_anonymous(response):
                    failures.append(f"{method.upper()} {url} -> {response.status_code}")
            # at least one method reached the login check (not only 405s)
            if all(r.status_code == 405 for r in answers.values()):
                failures.append(f"{url}: every method 405")
    assert not failures, "\n".join(failures)
    assert checked == 2 * len([r for r in ALL_ROUTES if r.audience != PUBLIC])
    assert ReaderStudy.objects.get().status == ReaderStudy.Status.OPEN
    assert RegistrationJob.objects.get().status == RegistrationJob.Status.QUEUED


def test_public_urls_are_only_the_login() -> None:
    assert {r.name for r in ALL_ROUTES if r.audience == PUBLIC} == {"login", "api-token"}


def test_schema_and_docs_need_login(client: Client, junior, client_for) -> None:  # noqa: ANN001
    for name in ("api-schema", "api-docs"):
        assert client.get(reverse(name)).status_code in (401, 403), name
        assert client_for(junior).get(reverse(name)).status_code == 200, name


# --- rule 2: roles --------------------------------------------------------------------------------


def _role_refusals(client: Client, url: str) -> dict[str, int]:
    return {m: _call(client, m, url).status_code for m in METHODS}


def _refused_by_role(codes: dict[str, int]) -> bool:
    """403/404 for what the view serves, 405 for what it never serves; never 2xx or 3xx."""
    return set(codes.values()) <= {403, 404, 405} and bool(set(codes.values()) & {403, 404})


@pytest.mark.parametrize("role", ["junior", "outsider"])
def test_readers_get_403_or_404_on_every_coordinator_url(
    role: str, request: pytest.FixtureRequest, frozen: dict[str, Any], client_for: Any
) -> None:
    client = client_for(request.getfixturevalue(role))
    failures = [
        f"{url} -> {codes}"
        for route in ALL_ROUTES
        if route.audience == COORD
        for w in (frozen, None)
        for url in [url_for(route, w)]
        for codes in [_role_refusals(client, url)]
        if not _refused_by_role(codes)
    ]
    assert not failures, "\n".join(failures)
    # nothing the reader sent did anything
    study = ReaderStudy.objects.get()
    assert study.status == ReaderStudy.Status.OPEN and study.snapshots.count() == 1
    assert Read.objects.get(pk=frozen["read"].pk).status == Read.Status.SUBMITTED
    assert RegistrationJob.objects.get().status == RegistrationJob.Status.QUEUED
    assert Case.objects.count() == 2


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_coordinators_get_403_or_404_on_every_reader_url(
    role: str, request: pytest.FixtureRequest, frozen: dict[str, Any], client_for: Any
) -> None:
    client = client_for(request.getfixturevalue(role))
    failures = [
        f"{url} -> {codes}"
        for route in ALL_ROUTES
        if route.audience == READER
        for url in [url_for(route, frozen)]
        for codes in [_role_refusals(client, url)]
        if not _refused_by_role(codes)
    ]
    assert not failures, "\n".join(failures)


def test_coordinator_sees_no_results_before_lock_or_snapshot(
    world: dict[str, Any], coordinator, client_for
) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    pk = world["study"].pk
    assert c.get(reverse("readerstudy:analysis", args=[pk])).status_code == 409
    for url in (
        reverse("readerstudy:analysis-figure", args=[pk, "roc", "svg"]),
        reverse("readerstudy:analysis-export", args=[pk, "reads-csv"]),
        reverse("readerstudy:api-analysis", args=[pk]),
        reverse("readerstudy:api-analysis-export", args=[pk, "results-json"]),
        reverse("readerstudy:api-analysis-figure", args=[pk, "roc", "png"]),
    ):
        assert c.get(url).status_code == 404, url
    rows = c.get(reverse("readerstudy:api-read-list")).json()["results"]
    assert rows and all(row["scores"] is None for row in rows)
    detail = c.get(reverse("readerstudy:api-read-detail", args=[world["read"].pk])).json()
    assert detail["scores"] is None
    page = c.get(reverse("readerstudy:study-detail", args=[pk]))
    assert page.status_code == 200 and page.context["results_visible"] is False


# --- rule 3: another reader's objects are 404 -----------------------------------------------------

OBJECT_READER_ROUTES = [
    r
    for r in ALL_ROUTES
    if (r.audience == READER and ("token" in r.params or r.name == "readerstudy:wado"))
    or r.name == "readerstudy:api-read-detail"
]


def _owner_urls(w: dict[str, Any]) -> list[str]:
    return [url_for(r, w) for r in OBJECT_READER_ROUTES]


@pytest.mark.parametrize("role", ["outsider", "senior"])
def test_other_readers_get_404_on_someone_elses_assignment(
    role: str, request: pytest.FixtureRequest, world: dict[str, Any], junior, client_for
) -> None:  # noqa: ANN001
    assert {r.name for r in OBJECT_READER_ROUTES} >= {
        "readerstudy:viewer",
        "readerstudy:read-draft",
        "readerstudy:read-submit",
        "readerstudy:series-manifest",
        "readerstudy:wado",
        "readerstudy:api-worklist-detail",
        "readerstudy:api-worklist-draft",
        "readerstudy:api-worklist-submit",
        "readerstudy:api-read-detail",
    }
    other = client_for(request.getfixturevalue(role))
    for url in _owner_urls(world):
        codes = _role_refusals(other, url)
        # 404 for the methods the endpoint serves; 405 only for the ones it never serves
        assert set(codes.values()) <= {404, 405}, (url, codes)
        assert 404 in codes.values(), (url, codes)
    # the lists answer, but hold nothing of junior's
    for name in ("readerstudy:api-worklist-list", "readerstudy:api-read-list"):
        body = other.get(reverse(name)).content.decode()
        assert (
            world["assignment"].token not in body and world["assignment"].reading_code not in body
        )
    home = other.get(reverse("readerstudy:worklist-home")).content.decode()
    assert world["assignment"].token not in home
    world["read"].refresh_from_db()
    assert world["read"].status == "submitted"


SECRETS = re.compile(r"SYN-[AB]|Synthetic audit cohort|reference|cspca|biopsy|isup", re.IGNORECASE)


def test_owner_reaches_the_same_urls_and_they_carry_no_secrets(
    world: dict[str, Any], junior, client_for
) -> None:  # noqa: ANN001
    """The control for the 404s above: the very same URLs answer the owner (so they are real)."""
    c = client_for(junior)
    for route in OBJECT_READER_ROUTES:
        if route.name in (
            "readerstudy:read-draft",
            "readerstudy:read-submit",
            "readerstudy:api-worklist-draft",
            "readerstudy:api-worklist-submit",
        ):
            continue  # POST-only; the read is submitted, so these answer 400 (tested elsewhere)
        response = c.get(url_for(route, world))
        assert response.status_code == 200, route
        if response["Content-Type"].startswith(("text/", "application/json")):
            text = response.content.decode()
            assert not SECRETS.search(text), (route, SECRETS.search(text))
            assert world["series"].series_instance_uid not in text, route


def test_reader_reads_only_of_open_studies(
    world: dict[str, Any], junior, coordinator, client_for
) -> None:  # noqa: ANN001
    """Rule 3 says reads of the reader's own OPEN assignments: a locked study's reads go away."""
    c = client_for(junior)
    detail = reverse("readerstudy:api-read-detail", args=[world["read"].pk])
    assert c.get(detail).status_code == 200
    services.study_lock(study=world["study"], user=coordinator)
    assert c.get(detail).status_code == 404
    assert c.get(reverse("readerstudy:api-read-list")).json()["results"] == []
    assert (
        c.get(
            url_for(next(r for r in ALL_ROUTES if r.name == "readerstudy:viewer"), world)
        ).status_code
        == 404
    )


def test_format_suffixed_actions_answer_instead_of_500(
    world: dict[str, Any], junior, coordinator, client_for
) -> None:  # noqa: ANN001
    """The router's ``.json`` twins of the @action URLs reach the action (they raised TypeError)."""
    c = client_for(coordinator)
    progress = reverse(
        "readerstudy:api-study-progress", kwargs={"pk": world["study"].pk, "format": "json"}
    )
    assert c.get(progress).status_code == 200
    other = (
        Assignment.objects.filter(study=world["study"], reader__user=junior)
        .exclude(pk=world["assignment"].pk)
        .order_by("session", "position")
        .first()
    )
    draft = reverse(
        "readerstudy:api-worklist-draft", kwargs={"token": other.token, "format": "json"}
    )
    response = client_for(junior).post(draft, data={"pirads": 3}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "draft"
