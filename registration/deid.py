"""De-identification following the DICOM PS3.15 Annex E Basic Application Level Confidentiality
Profile, with the Retain Longitudinal Temporal Information with Modified Dates option (dates are
shifted by a secret per-case offset) and the Clean Descriptors option for series descriptions.

Pure functions over pydicom datasets; the secret salt comes from the caller (settings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

# Standard UIDs (SOP classes, transfer syntaxes, coding schemes) identify no one and must survive.
STANDARD_UID_ROOT = "1.2.840.10008."

# Attributes replaced by the pseudonym (PS3.15 action D).
PSEUDONYM_KEYWORDS = ("PatientName", "PatientID")
# Attributes kept but emptied (action Z): type 2 attributes that must be present.
EMPTY_KEYWORDS = (
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "ContentCreatorName",
)
# Attributes removed (action X), from PS3.15 Table E.1-1; PN/TM/DT/private elements are handled by
# rule below, so this list holds the identifying ones of other value representations.
REMOVE_KEYWORDS = frozenset(
    {
        "PatientBirthTime",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "PatientReligiousPreference",
        "PatientComments",
        "PatientState",
        "PatientInsurancePlanCodeSequence",
        "PatientPrimaryLanguageCodeSequence",
        "OtherPatientIDs",
        "OtherPatientNames",
        "OtherPatientIDsSequence",
        "IssuerOfPatientID",
        "MedicalRecordLocator",
        "EthnicGroup",
        "Occupation",
        "SmokingStatus",
        "AdditionalPatientHistory",
        "PregnancyStatus",
        "LastMenstrualDate",
        "MilitaryRank",
        "BranchOfService",
        "CountryOfResidence",
        "RegionOfResidence",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "InstitutionCodeSequence",
        "StationName",
        "DeviceSerialNumber",
        "DeviceUID",
        "PlateID",
        "DetectorID",
        "GantryID",
        "CassetteID",
        "StudyDescription",
        "ProtocolName",
        "ImageComments",
        "StudyComments",
        "SeriesDescription",
        "ReasonForStudy",
        "ReasonForTheRequestedProcedure",
        "RequestedProcedureDescription",
        "RequestedProcedureID",
        "RequestAttributesSequence",
        "RequestingService",
        "ScheduledProcedureStepDescription",
        "ScheduledProcedureStepID",
        "PerformedProcedureStepDescription",
        "PerformedProcedureStepID",
        "CommentsOnThePerformedProcedureStep",
        "PerformedStationName",
        "PerformedLocation",
        "AdmittingDiagnosesDescription",
        "AdmittingDiagnosesCodeSequence",
        "AdmissionID",
        "ProcedureCodeSequence",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
        "ReferencedPatientSequence",
        "ReferencedStudySequence",
        "ReferencedPerformedProcedureStepSequence",
        "ReferencedImageSequence",
        "SourceImageSequence",
        "DerivationDescription",
        "FrameComments",
        "AcquisitionComments",
        "InterpretationText",
        "TextValue",
        "ContentSequence",
        "ModifiedAttributesSequence",
        "OriginalAttributesSequence",
        "DigitalSignaturesSequence",
        "DataSetTrailingPadding",
        "StudyStatusID",
        "StudyPriorityID",
        "ServiceEpisodeID",
        "ServiceEpisodeDescription",
        "ResponsibleOrganization",
        "ResponsiblePerson",
        "CurrentPatientLocation",
        "PatientInstitutionResidence",
        "VisitComments",
        "DeidentificationMethodCodeSequence",
        "DeidentificationMethod",
        "SoftwareVersions",
        "OperatorIdentificationSequence",
        "PhysiciansOfRecordIdentificationSequence",
        "PerformingPhysicianIdentificationSequence",
        "ReferringPhysicianIdentificationSequence",
        "InstanceCreatorUID",
        "StorageMediaFileSetUID",
        "StorageMediaFileSetID",
    }
)
# Clean Descriptors option: series descriptions say what the image is (needed to tell a T2 from an
# ADC in the import report); they are kept unless they look like they carry a name or number.
CLEAN_DESCRIPTOR_KEYWORDS = ("SeriesDescription", "ProtocolName")


def _digest(*, salt: str, message: str) -> bytes:
    return hmac.new(salt.encode(), message.encode(), hashlib.sha256).digest()


def uid_remap(uid: str, *, key: str, salt: str) -> str:
    """A new UID for ``uid``: the same input, key and salt always give the same output.

    ``2.25.<128-bit integer>`` (PS3.5 B.2) from an HMAC, so it cannot be reversed without the salt.
    """
    value = int.from_bytes(_digest(salt=salt, message=f"uid|{key}|{uid}")[:16], "big")
    return f"2.25.{value}"


def date_offset_days(*, key: str, salt: str) -> int:
    """Secret per-case shift, 1 to 10 years back, applied to every date of the case."""
    return 365 + int.from_bytes(_digest(salt=salt, message=f"date|{key}")[:4], "big") % 3286


def date_shift(value: str, *, days: int) -> str:
    """Shift a DA value ``YYYYMMDD`` back by ``days``; unparseable values are dropped."""
    text = str(value).strip()
    if not text:
        return ""
    try:
        day = dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return ""
    return (day - dt.timedelta(days=days)).strftime("%Y%m%d")


def _descriptor_clean(value: str) -> str:
    text = str(value)
    # A run of 5+ digits can be an ID or a date; a caret is a person-name separator.
    digit_runs = "".join(c if c.isdigit() else " " for c in text).split()
    if "^" in text or any(len(run) >= 5 for run in digit_runs):
        return ""
    return text[:64]


def dataset_deidentify(
    ds: Dataset,
    *,
    pseudonym: str,
    key: str,
    salt: str,
    keep_descriptors: bool = True,
) -> Dataset:
    """De-identify ``ds`` in place and return it.

    Private elements are removed; patient name and ID become ``pseudonym``; every non-standard UID
    is remapped with :func:`uid_remap`; dates are shifted by :func:`date_offset_days`; times, person
    names and the identifying attributes of PS3.15 Table E.1-1 are removed or emptied. Nested
    sequences are processed the same way.
    """
    days = date_offset_days(key=key, salt=salt)
    descriptors = {}
    if keep_descriptors:
        for kw in CLEAN_DESCRIPTOR_KEYWORDS:
            if kw in ds:
                descriptors[kw] = _descriptor_clean(ds.get(kw, ""))
    _walk(ds, days=days, remap=lambda uid: uid_remap(uid, key=key, salt=salt))
    for kw in PSEUDONYM_KEYWORDS:
        setattr(ds, kw, pseudonym)
    for kw in EMPTY_KEYWORDS:
        setattr(ds, kw, "")
    for kw, value in descriptors.items():
        if value:
            setattr(ds, kw, value)
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.DeidentificationMethod = "PS3.15 basic profile; dates shifted; UIDs remapped (mritrus)"
    codes = []
    for value, meaning in (
        ("113100", "Basic Application Confidentiality Profile"),
        ("113105", "Clean Descriptors Option"),
        ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ):
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = DicomSequence(codes)
    if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _walk(ds: Dataset, *, days: int, remap: Callable[[str], str]) -> None:
    ds.remove_private_tags()
    for elem in list(ds):
        keyword = elem.keyword
        if keyword in REMOVE_KEYWORDS:
            del ds[elem.tag]
            continue
        if not keyword and elem.tag.group in (0x0008, 0x0010, 0x0032, 0x0038, 0x0040):
            # Public tags unknown to pydicom in the patient/study/visit groups: removing is safer.
            del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item, days=days, remap=remap)
        elif elem.VR == "PN" or elem.VR in ("TM", "DT"):
            del ds[elem.tag]
        elif elem.VR == "DA":
            ds[elem.tag] = DataElement(elem.tag, "DA", date_shift(elem.value or "", days=days))
        elif elem.VR == "UI" and elem.value:
            values = elem.value if isinstance(elem.value, list | tuple) else [elem.value]
            new = [v if str(v).startswith(STANDARD_UID_ROOT) else remap(str(v)) for v in values]
            ds[elem.tag] = DataElement(elem.tag, "UI", new if len(new) > 1 else new[0])
