"""Real clients against a live server: dicomweb-client (Python), OHIF's requests, Slicer's import.

The server is pytest-django's ``live_server`` (a real HTTP server in a thread). All data SYNTHETIC.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from rest_framework.authtoken.models import Token

from tests.dicomweb.conftest import t2_files

OHIF_CONFIG = Path(__file__).resolve().parents[2] / "docs" / "ohif" / "app-config.js"
PASSWORD = "live-server-pw"


@pytest.fixture
def login(coordinator) -> tuple[str, str]:  # noqa: ANN001
    coordinator.set_password(PASSWORD)
    coordinator.save()
    return coordinator.username, PASSWORD


def test_dicomweb_client_stores_searches_and_retrieves(
    live_server, cohort, login, tmp_path: Path, settings
) -> None:  # noqa: ANN001
    # dicomweb-client sends "Host: localhost" without the port: the public URL says it instead
    settings.MRITRUS_PUBLIC_URL = live_server.url
    session = requests.Session()
    session.auth = login
    client = DICOMwebClient(url=f"{live_server.url}/dicomweb/cohorts/{cohort.pk}", session=session)
    sent = [pydicom.dcmread(f) for f in t2_files(tmp_path / "in", patient="SIM-LIVE", slices=4)]
    answer = client.store_instances(sent)
    stored = [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence]
    assert len(stored) == 4 and "FailedSOPSequence" not in answer

    # QIDO: the new study by its pseudonym, with the standard keys
    codes = {s["00100020"]["Value"][0] for s in client.search_for_studies()}
    code = (codes - {"SYN01", "SYN02"}).pop()
    studies = client.search_for_studies(search_filters={"PatientID": code}, fields=["StudyDate"])
    assert len(studies) == 1
    study_uid = studies[0]["0020000D"]["Value"][0]
    assert studies[0]["00080020"]["Value"][0] != "20240102"  # dates shifted at import
    series = client.search_for_series(study_uid, search_filters={"Modality": "MR"})
    series_uid = series[0]["0020000E"]["Value"][0]
    instances = client.search_for_instances(study_uid, series_uid, limit=2, offset=1)
    assert [i["00200013"]["Value"][0] for i in instances] == [2, 3]

    # WADO-RS: instance, series, metadata, frames, rendered
    sop = stored[0]
    ds = client.retrieve_instance(study_uid, series_uid, sop)
    assert ds.SOPInstanceUID == sop and ds.PatientID == code
    assert ds.PatientName != sent[0].PatientName and ds.StudyInstanceUID != sent[0].StudyInstanceUID
    assert len(client.retrieve_series(study_uid, series_uid)) == 4
    meta = client.retrieve_instance_metadata(study_uid, series_uid, sop)
    assert meta["7FE00010"]["BulkDataURI"].endswith("/bulkdata/7FE00010")
    frames = client.retrieve_instance_frames(study_uid, series_uid, sop, frame_numbers=[1])
    assert frames == [ds.PixelData]
    png = client.retrieve_instance_rendered(study_uid, series_uid, sop, media_types=("image/png",))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    bulk = client.retrieve_bulkdata(meta["7FE00010"]["BulkDataURI"])
    assert bulk == [ds.PixelData]


def test_slicer_style_import_with_a_bearer_token(
    live_server, cohort, coordinator, tmp_path: Path
) -> None:  # noqa: ANN001
    """What 3D Slicer's DICOMUtils.importFromDICOMWeb(endpoint, study, accessToken=...) does:
    a Bearer header; the series of the study; each series' metadata, then its instances streamed."""
    token = Token.objects.create(user=coordinator).key
    client = DICOMwebClient(
        url=f"{live_server.url}/dicomweb", headers={"Authorization": f"Bearer {token}"}
    )
    study_uid = client.search_for_studies(search_filters={"PatientID": "SYN01"})[0]["0020000D"][
        "Value"
    ][0]
    for series in client.search_for_series(study_instance_uid=study_uid):
        uid = series["0020000E"]["Value"][0]
        info = client.retrieve_series_metadata(
            study_instance_uid=study_uid, series_instance_uid=uid
        )
        assert len(info) == 4 and all("00080018" in i for i in info)
        for n, instance in enumerate(
            client.iter_series(study_instance_uid=study_uid, series_instance_uid=uid)
        ):
            instance.save_as(tmp_path / f"{uid}-{n}.dcm")
    files = list(tmp_path.glob("*.dcm"))
    assert len(files) == 4 and pydicom.dcmread(files[0]).PatientID == "SYN01"
    reader = DICOMwebClient(
        url=f"{live_server.url}/dicomweb", headers={"Authorization": "Bearer bad"}
    )
    with pytest.raises(requests.HTTPError) as info:
        reader.search_for_studies()
    assert info.value.response.status_code == 401


def _ohif_config() -> dict[str, str]:
    text = OHIF_CONFIG.read_text()
    found = {
        key: re.search(rf"{key}: '([^']+)'", text).group(1)  # type: ignore[union-attr]
        for key in ("qidoRoot", "wadoRoot", "imageRendering", "auth")
    }
    assert "omitQuotationForMultipartRequest: true" in text and "enableStudyLazyLoad: true" in text
    return found


def test_the_ohif_config_and_the_requests_ohif_sends(live_server, cohort, login, settings) -> None:  # noqa: ANN001
    config = _ohif_config()
    assert (
        config["imageRendering"] == "wadors" and config["auth"] == "MRITRUS_USER:MRITRUS_PASSWORD"
    )
    ohif_origin = "http://ohif.localhost:3000"
    settings.MRITRUS_DICOMWEB_CORS_ORIGINS = [ohif_origin]
    qido = config["qidoRoot"].replace("MRITRUS_ORIGIN", live_server.url)
    wado = config["wadoRoot"].replace("MRITRUS_ORIGIN", live_server.url)
    http = requests.Session()
    http.auth = login  # what OHIF makes of requestOptions.auth: HTTP Basic
    http.headers["Origin"] = ohif_origin
    as_json = {"Accept": "application/dicom+json"}

    # 1. the study list
    studies = http.get(
        f"{qido}/studies",
        params={
            "limit": 101,
            "offset": 0,
            "fuzzymatching": "false",
            "includefield": "00081030,00080060",
        },
        headers=as_json,
    )
    assert (
        studies.status_code == 200 and studies.headers["Access-Control-Allow-Origin"] == ohif_origin
    )
    mine = [s for s in studies.json() if s["00100020"]["Value"] == ["SYN01"]]
    # a case's MR and TRUS are two studies (different machines)
    assert sorted(s["00080061"]["Value"] for s in mine) == [["MR"], ["US"]]
    # the study list filters OHIF offers
    filtered = http.get(
        f"{qido}/studies",
        params={"PatientName": "*syn0*", "ModalitiesInStudy": "US", "limit": 101},
        headers=as_json,
    )
    assert [s["00100020"]["Value"][0] for s in filtered.json()] == ["SYN01"]

    # 2. opening a study: its series, then each series' metadata (lazy load)
    image_ids = []
    for study in mine:
        study_uid = study["0020000D"]["Value"][0]
        series = http.get(f"{qido}/studies/{study_uid}/series", headers=as_json).json()
        assert len(series) == 1
        series_uid = series[0]["0020000E"]["Value"][0]
        meta = http.get(f"{wado}/studies/{study_uid}/series/{series_uid}/metadata", headers=as_json)
        assert meta.status_code == 200
        for instance in meta.json():
            assert "BulkDataURI" in instance["7FE00010"]
            sop = instance["00080018"]["Value"][0]
            size = instance["00280010"]["Value"][0] * instance["00280011"]["Value"][0] * 2
            image_ids.append(
                (f"{wado}/studies/{study_uid}/series/{series_uid}/instances/{sop}/frames/1", size)
            )
    assert len(image_ids) == 8

    # 3. the images: a CORS preflight, then cornerstone's WADO-RS frame requests
    preflight = requests.options(
        image_ids[0][0],
        headers={
            "Origin": ohif_origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    accept = "multipart/related; type=application/octet-stream; transfer-syntax=*"
    for url, size in image_ids:
        frame = http.get(url, headers={"Accept": accept})
        assert frame.status_code == 200 and frame.headers["Content-Type"].startswith(
            "multipart/related"
        )
        boundary = frame.headers["Content-Type"].split("boundary=")[1]
        part = frame.content.split(f"--{boundary}".encode())[1]
        assert len(part.split(b"\r\n\r\n", 1)[1]) - 2 == size
