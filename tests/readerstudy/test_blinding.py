"""Each blinding rule of the reader-study issue, enforced on the server.

1. A reader fetches only the series of their own open assignments: any other image, series
   manifest, case (viewer page) or read answers 404.
2. Nothing a reader receives (pages, API, DICOM headers, URLs) carries a patient identifier, case
   code, reference PI-RADS, biopsy result, other readers' scores or an arm word.
3. The two arms of one patient have unrelated UIDs and codes.
4. Results stay hidden from readers, and from coordinators until the study is locked/snapshotted.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import parse_qs, urlparse

import pydicom
import pytest
from django.urls import reverse

from readerstudy import read_services, services
from readerstudy.analysis import services as analysis_services
from readerstudy.display import SLICES
from readerstudy.models import Assignment, ReaderStudy
from readerstudy.serving import (
    KEPT_KEYWORDS,
    REMAPPED_KEYWORDS,
    neutral_identity,
    view_slice_uids,
)
from registration.models import Case, DicomInstance
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db

ARM_WORDS = re.compile(r"regist|fused|fusion|warp|original|rern|deform|model", re.IGNORECASE)
SECRET_WORDS = re.compile(
    r"SYN-[ABC]|reference|cspca|biopsy|isup|gleason|case_code|lesion_side|Synthetic reader cohort",
    re.IGNORECASE,
)


def session1(study: ReaderStudy, user) -> list[Assignment]:  # noqa: ANN001
    return list(
        Assignment.objects.filter(study=study, reader__user=user, session=1).order_by("position")
    )


def manifest(client, assignment: Assignment, role: str = "primary") -> dict:  # noqa: ANN001
    view = assignment.views.get(role=role)
    response = client.get(reverse("readerstudy:series-manifest", args=[view.token]))
    assert response.status_code == 200
    return response.json()


def wado_url(image_id: str) -> str:
    return image_id.removeprefix("wadouri:")


def visible_text(html: str) -> str:
    """Page text a reader sees or can read in the source, minus the static T2 criteria help."""
    return re.sub(r'<table class="criteria">.*?</table>', "", html, flags=re.DOTALL)


def all_strings(ds: pydicom.Dataset) -> list[tuple[str, str]]:
    found = []
    for element in ds.iterall():
        if element.VR in ("SQ", "OB", "OW", "OF", "UN") or element.value is None:
            continue
        values = element.value if element.VM > 1 else [element.value]
        found += [(element.keyword or str(element.tag), str(v)) for v in values]
    return found


# --- rule 1: only your own open assignments ------------------------------------------------------


def test_other_readers_case_series_image_and_read_are_404(open_study, junior, senior, client_for):
    mine = session1(open_study, junior)[0]
    theirs = session1(open_study, senior)[0]
    c = client_for(junior)
    image_id = manifest(client_for(senior), theirs)["imageIds"][0]
    read_services.read_draft_save(assignment=theirs, user=senior, data={"pirads": 5})
    own = client_for(junior).get(wado_url(manifest(c, mine)["imageIds"][0]))
    assert own.status_code == 200 and own["Content-Type"] == "application/dicom"
    view = theirs.views.get(role="primary")
    for url in [
        reverse("readerstudy:viewer", args=[theirs.token]),
        reverse("readerstudy:series-manifest", args=[view.token]),
        wado_url(image_id),
        reverse("readerstudy:api-worklist-detail", args=[theirs.token]),
        reverse("readerstudy:api-read-detail", args=[theirs.read.pk]),
    ]:
        assert c.get(url).status_code == 404, url
    for url in [
        reverse("readerstudy:read-draft", args=[theirs.token]),
        reverse("readerstudy:read-submit", args=[theirs.token]),
        reverse("readerstudy:api-worklist-draft", args=[theirs.token]),
    ]:
        r = c.post(url, data=json.dumps({"pirads": 1}), content_type="application/json")
        assert r.status_code == 404, url
    theirs.read.refresh_from_db()
    assert theirs.read.pirads == 5


def test_wado_with_stored_uids_or_mixed_uids_is_404(open_study, junior, client_for):
    c = client_for(junior)
    mine = session1(open_study, junior)[0]
    view = mine.views.get(role="primary")
    instance = view.series.instances.first()
    stored = reverse("readerstudy:wado") + (
        f"?requestType=WADO&studyUID={view.series.study_instance_uid}"
        f"&seriesUID={view.series.series_instance_uid}&objectUID={instance.sop_instance_uid}"
        "&contentType=application/dicom"
    )
    assert c.get(stored).status_code == 404
    # Remapped series of mine, but an object UID from another of my assignments: still 404.
    other = session1(open_study, junior)[1].views.get(role="primary")
    other_obj = view_slice_uids(view=other)[0]
    mixed = reverse("readerstudy:wado") + (
        f"?requestType=WADO&studyUID={view.study_uid}&seriesUID={view.series_uid}"
        f"&objectUID={other_obj}&contentType=application/dicom"
    )
    assert c.get(mixed).status_code == 404
    assert c.get(reverse("readerstudy:wado") + "?requestType=WADO").status_code == 404


def test_outsider_and_coordinator_get_404_on_reader_endpoints(
    open_study, junior, outsider, coordinator, client_for
):
    a = session1(open_study, junior)[0]
    image_id = manifest(client_for(junior), a)["imageIds"][0]
    view = a.views.get(role="primary")
    for user in (outsider, coordinator):
        c = client_for(user)
        for url in (
            reverse("readerstudy:viewer", args=[a.token]),
            reverse("readerstudy:series-manifest", args=[view.token]),
            wado_url(image_id),
        ):
            assert c.get(url).status_code == 404, (user.username, url)


def test_anonymous_is_sent_to_login(open_study, junior, client):
    a = session1(open_study, junior)[0]
    response = client.get(reverse("readerstudy:viewer", args=[a.token]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_session_behind_washout_and_draft_or_locked_study_are_404(
    open_study, junior, coordinator, client_for
):
    open_study.washout_days = 30
    open_study.save()
    c = client_for(junior)
    later = Assignment.objects.filter(study=open_study, reader__user=junior, session=2).first()
    assert c.get(reverse("readerstudy:viewer", args=[later.token])).status_code == 404
    for a in session1(open_study, junior):
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    # every first-session case done, but the 30-day washout has not passed
    assert c.get(reverse("readerstudy:viewer", args=[later.token])).status_code == 404
    first = session1(open_study, junior)[0]
    assert c.get(reverse("readerstudy:viewer", args=[first.token])).status_code == 200
    services.study_lock(study=open_study, user=coordinator)
    assert c.get(reverse("readerstudy:viewer", args=[first.token])).status_code == 404
    view = first.views.get(role="primary")
    assert c.get(reverse("readerstudy:series-manifest", args=[view.token])).status_code == 404


def test_draft_study_is_invisible_to_readers(cohort, three_cases, coordinator, junior, client_for):
    study = services.study_create(
        name="draft one",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior],
        washout_days=0,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    a = Assignment.objects.filter(study=study).first()
    c = client_for(junior)
    assert c.get(reverse("readerstudy:viewer", args=[a.token])).status_code == 404
    assert "draft one" not in c.get(reverse("readerstudy:worklist-home")).content.decode()


# --- rule 2: nothing identifying, no reference, no arm word ---------------------------------------


def test_reader_pages_and_api_carry_no_secrets_or_arm_words(open_study, junior, senior, client_for):
    read_services.read_submit(
        assignment=session1(open_study, senior)[0],
        user=senior,
        data=complete({"comment": "SENIOR-SECRET-COMMENT"}),
        active_seconds=1,
    )
    c = client_for(junior)
    texts = {"worklist": c.get(reverse("readerstudy:worklist-home")).content.decode()}
    for kind in ("original", "registered", "fused"):
        a = Assignment.objects.filter(study=open_study, reader__user=junior, arm__kind=kind).first()
        if a.session != 1:
            for prev in Assignment.objects.filter(reader=a.reader, session__lt=a.session):
                if not hasattr(prev, "read") or prev.read.status != "submitted":
                    read_services.read_submit(assignment=prev, user=junior, data=complete())
        page = c.get(reverse("readerstudy:viewer", args=[a.token]))
        assert page.status_code == 200
        texts[f"viewer-{kind}"] = visible_text(page.content.decode())
        for view in a.views.all():
            texts[f"manifest-{kind}-{view.role}"] = json.dumps(manifest(c, a, view.role))
        texts[f"url-{kind}"] = reverse("readerstudy:viewer", args=[a.token])
    texts["api-worklist"] = c.get(reverse("readerstudy:api-worklist-list")).content.decode()
    texts["api-reads"] = c.get(reverse("readerstudy:api-read-list")).content.decode()
    stored_uids = set(DicomInstance.objects.values_list("sop_instance_uid", flat=True)) | set(
        Case.objects.values_list("series__series_instance_uid", flat=True)
    )
    for name, text in texts.items():
        assert not ARM_WORDS.search(text), (name, ARM_WORDS.search(text))
        assert not SECRET_WORDS.search(text), (name, SECRET_WORDS.search(text))
        assert "SENIOR-SECRET-COMMENT" not in text, name
        assert not any(uid in text for uid in stored_uids), name


def test_served_dicom_is_neutral_and_uses_reading_code(open_study, junior, client_for):
    c = client_for(junior)
    cases = {case.pk: case for case in Case.objects.all()}
    for a in Assignment.objects.filter(study=open_study, reader__user=junior, session=1):
        for view in a.views.all():
            image_id = manifest(c, a, view.role)["imageIds"][0]
            ds = pydicom.dcmread(io.BytesIO(c.get(wado_url(image_id)).content))
            assert str(ds.PatientName) == ds.PatientID == a.reading_code
            assert ds.SeriesInstanceUID == view.series_uid and ds.StudyInstanceUID == view.study_uid
            assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
            assert ds.SOPInstanceUID in view_slice_uids(view=view)
            stored = set(view.uid_map)
            case = cases[a.case_id]
            for keyword, value in all_strings(ds):
                assert value not in stored, keyword
                assert case.case_code not in value, keyword
                assert not ARM_WORDS.search(value), (keyword, value)
                assert not SECRET_WORDS.search(value), (keyword, value)
            assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
            assert ds.SeriesDescription == ("T2" if view.series.modality == "MR_T2" else "US")
            assert ds.SeriesNumber == (1 if view.role == "primary" else 2)
            # nothing that could pair the two arms of one patient: no dates, no age or size
            for keyword in ("StudyDate", "SeriesDate", "ContentDate", "StudyTime", "PatientAge"):
                assert not ds.get(keyword), keyword


def test_manifest_and_urls_use_only_remapped_uids(open_study, junior, client_for):
    c = client_for(junior)
    a = session1(open_study, junior)[0]
    view = a.views.get(role="primary")
    data = manifest(c, a)
    assert len(data["imageIds"]) == SLICES
    stored = set(view.series.instances.values_list("sop_instance_uid", flat=True))
    for image_id in data["imageIds"]:
        query = parse_qs(urlparse(wado_url(image_id)).query)
        assert query["seriesUID"] == [view.series_uid]
        assert query["objectUID"][0] in view_slice_uids(view=view)
        assert query["objectUID"][0] not in stored
    assert data["presets"][0]["lower"] < data["presets"][0]["upper"]


# --- rule 3: arms of one patient unrelated ---------------------------------------------------------


def test_two_arms_of_one_patient_have_unrelated_dicom_uids(open_study, junior, client_for):
    c = client_for(junior)
    for a in session1(open_study, junior):
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    case = Case.objects.get(case_code="SYN-A")
    headers = {}
    for a in Assignment.objects.filter(study=open_study, reader__user=junior, case=case):
        if a.session > 2:
            continue
        image_id = manifest(c, a)["imageIds"][0]
        headers[a.arm.kind] = (
            a.reading_code,
            pydicom.dcmread(io.BytesIO(c.get(wado_url(image_id)).content)),
        )
    assert len(headers) == 2
    (code1, ds1), (code2, ds2) = headers.values()
    assert code1 != code2
    for keyword in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
    ):
        assert ds1.get(keyword) != ds2.get(keyword), keyword
    assert ds1.PatientID != ds2.PatientID
    # the same header layout in both arms: no attribute present in one arm only
    assert set(ds1.dir()) == set(ds2.dir())


# --- rule 4: results hidden --------------------------------------------------------------------------


def test_results_hidden_from_coordinator_until_locked_or_snapshotted(
    open_study, junior, coordinator, client_for
):
    a = session1(open_study, junior)[0]
    read_services.read_submit(assignment=a, user=junior, data=complete({"comment": "XYZZY"}))
    c = client_for(coordinator)
    page = c.get(reverse("readerstudy:study-detail", args=[open_study.pk]))
    assert page.status_code == 200 and page.context["results_visible"] is False
    assert "XYZZY" not in page.content.decode() and "<th>PI-RADS</th>" not in page.content.decode()
    rows = c.get(reverse("readerstudy:api-read-list")).json()["results"]
    assert rows and all(row["scores"] is None for row in rows)
    analysis_services.snapshot_create(study=open_study, user=coordinator)
    page = c.get(reverse("readerstudy:study-detail", args=[open_study.pk]))
    assert page.context["results_visible"] is True and "<th>PI-RADS</th>" in page.content.decode()
    rows = c.get(reverse("readerstudy:api-read-list")).json()["results"]
    row = next(r for r in rows if r["reading_code"] == a.reading_code)
    assert row["scores"]["pirads"] == 4 and row["scores"]["comment"] == "XYZZY"


def test_readers_cannot_reach_study_pages_results_or_other_reads(
    open_study, junior, senior, client_for
):
    read_services.read_submit(
        assignment=session1(open_study, senior)[0], user=senior, data=complete(), active_seconds=1
    )
    c = client_for(junior)
    assert c.get(reverse("readerstudy:study-detail", args=[open_study.pk])).status_code == 403
    assert c.get(reverse("readerstudy:study-list")).status_code == 403
    assert c.get(reverse("readerstudy:api-study-list")).status_code == 403
    assert c.get(reverse("readerstudy:api-study-progress", args=[open_study.pk])).status_code == 403
    assert c.get(reverse("readerstudy:api-read-list")).json()["results"] == []


def test_admin_shows_scores_only_once_frozen(open_study, junior, admin, client_for):
    a = session1(open_study, junior)[0]
    read = read_services.read_submit(
        assignment=a, user=junior, data=complete({"comment": "ADMIN-HIDDEN"}), active_seconds=1
    )
    admin.is_staff = admin.is_superuser = True
    admin.save()
    c = client_for(admin)
    url = reverse("admin:readerstudy_read_change", args=[read.pk])
    page = c.get(url)
    assert page.status_code == 200 and "ADMIN-HIDDEN" not in page.content.decode()
    analysis_services.snapshot_create(study=open_study, user=admin)
    assert "ADMIN-HIDDEN" in c.get(url).content.decode()


def test_real_prostatex_served_to_reader_carries_no_source_identifier(
    shared_data, tmp_path, coordinator, junior, client_for
):
    """Rule 2 on real data: import the ProstateX T2, read it as a reader, compare with the input."""
    import shutil

    from registration.importing.run import cohort_import
    from registration.models import Cohort

    source = shared_data / "prostatex-0000-dicom" / "4.000000-t2tsetra-00702"
    shutil.copytree(source, tmp_path / "in" / "t2")
    (tmp_path / "in" / "manifest.csv").write_text("case_code,reference_pirads,mr_t2\nPX01,4,t2\n")
    run = cohort_import(path=tmp_path / "in", cohort_name="ProstateX blinding", user=coordinator)
    assert run.accepted == 1, run.report
    study = services.study_create(
        name="PX",
        cohort=Cohort.objects.get(name="ProstateX blinding"),
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior],
        washout_days=0,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    services.study_open(study=study, user=coordinator)
    original = pydicom.dcmread(sorted(source.iterdir())[0], stop_before_pixels=True)
    secrets_in_source = {
        str(original.get(k))
        for k in (
            "PatientName",
            "PatientID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "FrameOfReferenceUID",
            "AccessionNumber",
            "StudyDate",
            "PatientBirthDate",
            "InstitutionName",
        )
        if original.get(k) not in (None, "")
    }
    assert secrets_in_source  # the fixture does carry identifiers to look for
    c = client_for(junior)
    a = Assignment.objects.get(study=study)
    view = a.views.get()
    for image_id in manifest(c, a)["imageIds"]:
        ds = pydicom.dcmread(io.BytesIO(c.get(wado_url(image_id)).content))
        values = {v for _, v in all_strings(ds)}
        assert not values & secrets_in_source
        assert "PX01" not in " ".join(values)
        assert ds.PatientID == a.reading_code
        served = set(ds.dir())
        allowed = set(KEPT_KEYWORDS) | set(REMAPPED_KEYWORDS) | set(neutral_identity(view=view))
        assert served <= allowed, served - allowed
        assert not {"Manufacturer", "StudyDate", "ProtocolName", "EchoTime"} & served
