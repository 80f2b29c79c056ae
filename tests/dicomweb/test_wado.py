"""WADO-RS: instances, metadata with BulkDataURI, frames, transfer-syntax refusal, rendered. SYNTHETIC."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from registration.models import DicomInstance, ImageSeries
from registration.serving import instance_path

pytestmark = pytest.mark.django_db

EXPLICIT = "1.2.840.10008.1.2.1"


def parts_of(response) -> list[bytes]:  # noqa: ANN001
    """The bodies of a multipart/related response (a small parser independent of the server's)."""
    content_type = response["Content-Type"]
    assert content_type.startswith("multipart/related")
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    body = b"".join(response.streaming_content) if response.streaming else response.content
    out = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        out.append(chunk.split(b"\r\n\r\n", 1)[1][:-2])
    return out


@pytest.fixture
def mr(cohort) -> ImageSeries:  # noqa: ANN001
    return ImageSeries.objects.get(case__case_code="SYN02")


def base(s: ImageSeries) -> str:
    return f"/dicomweb/studies/{s.study_instance_uid}/series/{s.series_instance_uid}"


def test_instance_series_and_study_retrieve_are_the_stored_files(
    mr, coordinator, client_for
) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    inst = mr.instances.first()
    stored = instance_path(inst).read_bytes()
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}'
    one = c.get(f"{base(mr)}/instances/{inst.sop_instance_uid}", HTTP_ACCEPT=accept)
    assert one.status_code == 200 and parts_of(one) == [stored]
    assert "transfer-syntax=1.2.840.10008.1.2.1" in one["Content-Type"]
    etag = one["ETag"]
    assert (
        c.get(f"{base(mr)}/instances/{inst.sop_instance_uid}", HTTP_IF_NONE_MATCH=etag).status_code
        == 304
    )
    bare = c.get(f"{base(mr)}/instances/{inst.sop_instance_uid}", HTTP_ACCEPT="application/dicom")
    assert bare.content == stored and bare["Content-Type"] == "application/dicom"
    series = c.get(base(mr), HTTP_ACCEPT='multipart/related; type="application/dicom"')
    files = parts_of(series)
    assert files == [
        instance_path(i).read_bytes() for i in mr.instances.order_by("instance_number")
    ]
    assert pydicom.dcmread(io.BytesIO(files[0])).PatientID == "SYN02"
    study = c.get(f"/dicomweb/studies/{mr.study_instance_uid}")  # */* -> multipart dicom
    assert len(parts_of(study)) == 4


def test_transfer_syntax_negotiation_says_no_clearly(mr, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    inst = mr.instances.first()
    url = f"{base(mr)}/instances/{inst.sop_instance_uid}"
    jpeg2000 = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'
    refused = c.get(url, HTTP_ACCEPT=jpeg2000)
    assert refused.status_code == 406
    assert b"1.2.840.10008.1.2.4.90 is not served" in refused.content
    assert b"not transcoded" in refused.content
    # a list with an acceptable alternative is served
    assert c.get(url, HTTP_ACCEPT=f"{jpeg2000}, {jpeg2000.replace('4.90', '1')}").status_code == 200
    frames = f"{url}/frames/1"
    jls = c.get(frames, HTTP_ACCEPT='multipart/related; type="image/jls"')
    assert jls.status_code == 406 and b"uncompressed only" in jls.content
    assert c.get(f"{base(mr)}/instances/1.2.3").status_code == 404
    assert c.get(f"{url}/frames/2").status_code == 404
    assert c.get(f"{url}/frames/x").status_code == 400


def test_frames_are_the_pixel_bytes(mr, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    inst = mr.instances.order_by("instance_number")[2]
    url = f"{base(mr)}/instances/{inst.sop_instance_uid}/frames/1"
    response = c.get(
        url, HTTP_ACCEPT="multipart/related; type=application/octet-stream; transfer-syntax=*"
    )
    assert response.status_code == 200
    ds = pydicom.dcmread(instance_path(inst))
    assert parts_of(response) == [ds.PixelData]
    assert "application/octet-stream" in response["Content-Type"]


def test_metadata_has_bulk_data_uris_that_resolve(mr, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    series_meta = c.get(f"{base(mr)}/metadata", HTTP_ACCEPT="application/dicom+json")
    assert series_meta.status_code == 200
    items = series_meta.json()
    assert len(items) == 4
    item = items[0]
    assert item["00100020"]["Value"] == ["SYN02"] and item["00080060"]["Value"] == ["MR"]
    uri = item["7FE00010"]["BulkDataURI"]
    assert uri.startswith("http://testserver/dicomweb/") and uri.endswith("/bulkdata/7FE00010")
    bulk = c.get(uri.replace("http://testserver", ""))
    first = DicomInstance.objects.get(sop_instance_uid=item["00080018"]["Value"][0])
    assert parts_of(bulk) == [pydicom.dcmread(instance_path(first)).PixelData]
    study_meta = c.get(f"/dicomweb/studies/{mr.study_instance_uid}/metadata").json()
    assert len(study_meta) == 4
    one = c.get(f"{base(mr)}/instances/{first.sop_instance_uid}/metadata").json()
    assert len(one) == 1 and "7FE00010" in one[0]


def test_rendered_png_and_jpeg(mr, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    inst = mr.instances.first()
    url = f"{base(mr)}/instances/{inst.sop_instance_uid}/rendered"
    png = c.get(url, HTTP_ACCEPT="image/png")
    assert png["Content-Type"] == "image/png"
    img = Image.open(io.BytesIO(png.content))
    assert img.size == (16, 12) and np.asarray(img).std() > 0
    jpeg = c.get(url + "?window=200,100&viewport=8,6&quality=80")
    assert jpeg["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (8, 6)
    assert (
        c.get(f"{base(mr)}/instances/{inst.sop_instance_uid}/frames/1/rendered").status_code == 200
    )
    assert c.get(url + "?window=a,b").status_code == 400


def test_cohort_scope_hides_other_cohorts(mr, cohort, coordinator, client_for) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    other = ImageSeries.objects.get(case__case_code="OTHER1")
    inst = other.instances.first()
    scoped = f"/dicomweb/cohorts/{cohort.pk}/studies/{other.study_instance_uid}"
    assert c.get(scoped).status_code == 404
    assert c.get(f"/dicomweb/studies/{other.study_instance_uid}").status_code == 200
    path = f"/series/{other.series_instance_uid}/instances/{inst.sop_instance_uid}/metadata"
    assert c.get(scoped + path).status_code == 404
