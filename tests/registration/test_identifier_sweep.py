"""Identifier sweep: identifiers injected into every PS3.15 attribute reach nothing we keep or serve.

A SYNTHETIC MR series gets a distinct identifying value in each attribute of the PS3.15 basic
profile's list (names, IDs, dates, times, UIDs, descriptions, device and institution text), in
private tags and in nested sequences; its folder path and zip name carry an MRN, a name and a
date. It is imported twice (manifest zip by the command line, DICOM-only zip by the web form),
read in a reader study, and then every served instance (coordinator and reader), every API answer
and page, every stored file and every database cell is searched for each original value.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from readerstudy import services as study_services
from readerstudy.models import Assignment
from registration.dicom.write import series_write
from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun

pytestmark = pytest.mark.django_db

# PS3.15 Table E.1-1 attributes (basic profile) that pydicom knows, by keyword.
PS315_KEYWORDS = str.split(
    """
AccessionNumber AcquisitionComments AcquisitionDate AcquisitionDateTime AcquisitionDeviceProcessingDescription
AcquisitionTime ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID AdmittingDate
AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime
BranchOfService CommentsOnThePerformedProcedureStep ConsultingPhysicianName ContentCreatorName
ContentDate ContentTime ContrastBolusAgent CountryOfResidence CurrentPatientLocation
DerivationDescription DetectorID DeviceSerialNumber DeviceUID EthnicGroup FillerOrderNumberImagingServiceRequest
FrameComments FrameOfReferenceUID GantryID ImageComments ImagePresentationComments
InstanceCreationDate InstanceCreationTime InstanceCreatorUID InstitutionAddress InstitutionalDepartmentName
InstitutionName InterpretationText IssuerOfPatientID Manufacturer ManufacturerModelName MedicalAlerts
MedicalRecordLocator MilitaryRank NameOfPhysiciansReadingStudy Occupation OperatorsName OtherPatientIDs
OtherPatientNames PatientAddress PatientBirthDate PatientBirthName PatientBirthTime PatientComments
PatientID PatientInstitutionResidence PatientInsurancePlanCodeSequence PatientMotherBirthName PatientName
PatientReligiousPreference PatientSexNeutered PatientState PatientTelephoneNumbers PerformedLocation
PerformedProcedureStepDescription PerformedProcedureStepEndDate PerformedProcedureStepID
PerformedProcedureStepStartDate PerformedStationAETitle PerformedStationName PerformingPhysicianName
PhysiciansOfRecord PlacerOrderNumberImagingServiceRequest PlateID PreMedication ProtocolName
ReasonForStudy ReasonForTheRequestedProcedure ReferencedImageSequence ReferencedPatientSequence
ReferencedStudySequence ReferringPhysicianAddress ReferringPhysicianName ReferringPhysicianTelephoneNumbers
RegionOfResidence RequestAttributesSequence RequestedProcedureDescription RequestedProcedureID
RequestingPhysician RequestingService ResponsibleOrganization ResponsiblePerson ScheduledProcedureStepDescription
ScheduledProcedureStepID SeriesDate SeriesDescription SeriesInstanceUID SeriesTime ServiceEpisodeDescription
ServiceEpisodeID SmokingStatus SoftwareVersions SourceImageSequence SpecialNeeds StationName StudyComments
StudyDate StudyDescription StudyID StudyInstanceUID StudyTime TextComments TextString TimezoneOffsetFromUTC
Allergies VisitComments
"""
)
NUMERIC_VRS = {"DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT"}
# Values pydicom cannot hold with any distinctive text: checked by format, not swept.
SKIPPED_VRS = NUMERIC_VRS | {"OB", "OW", "OF", "UN", "OB or OW"}
PATH_IDENTIFIERS = ["MRN7654321", "DOE_JOHN", "2011-07-07"]


def _value(keyword: str, n: int) -> tuple[str, object] | None:
    vr = dictionary_VR(tag_for_keyword(keyword))
    token = f"ZQ{n:03d}X"
    if vr in SKIPPED_VRS:
        return None
    if vr == "PN":
        return f"{token}^DOE", f"{token}^DOE"
    if vr == "DA":
        return "19450312", "19450312"
    if vr == "TM":
        return "101530.123456", "101530.123456"
    if vr == "DT":
        return "19450312101530", "19450312101530"
    if vr == "UI":
        uid = f"1.2.826.0.1.3680043.9.7654321.{n}"
        return uid, uid
    if vr == "AS":
        return "077Y", None  # type: ignore[return-value]
    if vr == "SQ":
        item = Dataset()
        item.PatientName = f"{token}^SEQ"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.7654321.{n}.1"
        item.CodeMeaning = f"{token} nested"
        return token, Sequence([item])
    if keyword == "SeriesDescription":
        return token, f"t2 tse tra {token} DOE^JOHN"
    if keyword == "Manufacturer":
        return token, f"SIEMENS {token}"
    return token, token


def _inject(ds: Dataset) -> set[str]:
    """Put an identifying value into every PS3.15 attribute, private tags and a nested sequence."""
    needles: set[str] = set()
    for n, keyword in enumerate(PS315_KEYWORDS):
        if tag_for_keyword(keyword) is None:
            continue
        made = _value(keyword, n)
        if made is None:
            continue
        needle, value = made
        if keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            needles.add(str(ds.get(keyword)))  # keep the series consistent; sweep its own UIDs
            continue
        setattr(ds, keyword, value if value is not None else needle)
        if value is not None and needle:
            needles.add(needle)
    block = ds.private_block(0x0011, "ZQ PRIVATE", create=True)
    block.add_new(0x01, "LO", "ZQPRIV1X")
    nested = Dataset()
    nested.PatientID = "ZQNEST1X"
    nested.add_new(0x00091001, "LO", "ZQNEST2X")  # an unknown public-looking tag in a sequence
    ds.ReferencedSeriesSequence = Sequence([nested])
    needles |= {"ZQPRIV1X", "ZQNEST1X", "ZQNEST2X", "19450312", "101530"}
    return needles


def _series(folder: Path, *, description_extra: str, seed: int) -> set[str]:
    """A SYNTHETIC 4-slice MR series with identifiers injected into every instance."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(0, 800, size=(16, 16, 4)).astype(np.float32)
    root = f"1.2.826.0.1.3680043.9.7654321.{seed}"
    written = series_write(
        folder,
        volume=volume,
        affine=np.diag([-0.8, -0.8, 3.0, 1.0]),
        modality="MR",
        study_uid=f"{root}.1",
        series_uid=f"{root}.2",
        frame_of_reference_uid=f"{root}.3",
        sop_uids=[f"{root}.4.{k}" for k in range(4)],
        patient_name="DOE^JOHN",
        patient_id="MRN7654321",
    )
    needles = {"MRN7654321"} | {uid for uid, _ in written}
    for _, path in written:
        ds = pydicom.dcmread(path)
        needles |= _inject(ds)
        if description_extra:
            ds.SeriesDescription = f"{description_extra} DOE^JOHN MRN7654321"
        ds.save_as(path)
    return needles


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent).as_posix())
    return target


def _hits(needles: set[str], text: str, where: str) -> list[str]:
    low = text.lower()
    return [f"{where}: {n}" for n in sorted(needles) if n.lower() in low]


def _file_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("latin-1")


def test_no_injected_identifier_survives_import(
    tmp_path: Path, coordinator, junior, client_for, settings
) -> None:  # noqa: ANN001
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    top = tmp_path / "MRN7654321_DOE_JOHN"
    t2 = top / "2011-07-07" / "t2"
    needles = _series(t2, description_extra="", seed=1)
    (top / "manifest.csv").write_text(
        "case_code,reference_pirads,mr_t2\nC01,3,2011-07-07/t2\n", encoding="utf-8"
    )
    needles |= set(PATH_IDENTIFIERS)
    # The sweep has teeth: the input carries each injected value (the paths carry the rest).
    source = "".join(_file_text(p) for p in t2.iterdir())
    assert len(needles) > 100
    assert not [n for n in needles - set(PATH_IDENTIFIERS) if n.lower() not in source.lower()]
    out = io.StringIO()
    call_command("cohort_import", str(_zip(top, tmp_path / "MRN7654321_DOE_JOHN.zip")), stdout=out)
    cli_text = out.getvalue()
    assert "1 accepted" in cli_text, cli_text

    # DICOM only, by the web form: the T2 again plus an "ADC" series that is skipped with a note.
    dicom_only = tmp_path / "dicom" / "MRN7654321_DOE_JOHN"
    needles |= _series(dicom_only / "2011-07-07" / "t2", description_extra="", seed=2)
    needles |= _series(dicom_only / "adc", description_extra="ADC", seed=3)
    client = client_for(coordinator)
    with _zip(dicom_only, tmp_path / "MRN7654321_DOE_JOHN_dicom.zip").open("rb") as fh:
        response = client.post(reverse("registration:cohort-upload"), {"archive": fh})
    assert response.status_code == 302
    web_run = ImportRun.objects.latest("pk")
    assert web_run.accepted == 1, web_run.report
    assert any("skipped series 'ADC'" in n for c in web_run.report["cases"] for n in c["notes"])
    # The ADC's clean-descriptor word survives; the T2 description kept only its vocabulary.
    assert set(ImageSeries.objects.values_list("series_description", flat=True)) == {"t2 tse tra"}

    case = Case.objects.get(case_code="C01")
    study = study_services.study_create(
        name="Sweep",
        cohort=case.cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior],
        washout_days=0,
    )
    study_services.study_worklists_generate(study=study, user=coordinator)
    study_services.study_open(study=study, user=coordinator)

    hits = _hits(needles, cli_text, "cohort_import output")
    # Every served instance: coordinator WADO for each stored instance, reader WADO for each view.
    for instance in DicomInstance.objects.select_related("series"):
        s = instance.series
        url = reverse("registration:wado") + (
            f"?requestType=WADO&studyUID={s.study_instance_uid}&seriesUID={s.series_instance_uid}"
            f"&objectUID={instance.sop_instance_uid}"
        )
        body = client.get(url)
        assert body.status_code == 200
        hits += _hits(needles, body.content.decode("latin-1"), f"coordinator WADO {instance.pk}")
    reader = client_for(junior)
    served = 0
    for assignment in Assignment.objects.filter(study=study):
        for view in assignment.views.all():
            manifest = reader.get(reverse("readerstudy:series-manifest", args=[view.token]))
            hits += _hits(needles, manifest.content.decode(), "reader manifest")
            for image_id in manifest.json()["imageIds"]:
                body = reader.get(image_id.removeprefix("wadouri:"))
                assert body.status_code == 200
                served += 1
                hits += _hits(needles, body.content.decode("latin-1"), "reader WADO")
        page = reader.get(reverse("readerstudy:viewer", args=[assignment.token]))
        hits += _hits(needles, page.content.decode(), "reader viewer page")
    assert served >= 4
    # Every API answer and coordinator page about the imported data.
    urls = ["/api/cohorts/", "/api/cases/", "/api/series/", "/api/imports/", "/cohorts/"]
    urls += [f"/api/imports/{r.pk}/" for r in ImportRun.objects.all()]
    urls += [reverse("registration:import-detail", args=[r.pk]) for r in ImportRun.objects.all()]
    urls += [reverse("registration:cohort-detail", args=[c.pk]) for c in Cohort.objects.all()]
    urls += [reverse("registration:case-detail", args=[c.pk]) for c in Case.objects.all()]
    urls += [
        reverse("registration:series-manifest", args=[s.pk]) for s in ImageSeries.objects.all()
    ]
    urls += [reverse("readerstudy:study-detail", args=[study.pk])]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        hits += _hits(needles, answer.content.decode(), url)
    # Every stored file (NIfTI decompressed) and every database cell.
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            hits += _hits(needles, _file_text(path), f"file {path.name}")
    for model in apps.get_models():
        for row in model.objects.all().values():
            hits += _hits(needles, json.dumps(row, default=str), f"db {model._meta.label}")
    assert hits == []
