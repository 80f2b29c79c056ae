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

from registration.dicom.deid_vocab import (
    CODE_TERMS,
    DESCRIPTOR_WORDS,
    WORD_VOCABULARIES,
    code_clean,
    words_clean,
)

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
# Text value representations: free text can carry a name anywhere, so every text attribute is
# removed unless it is a kept code string (defined terms only) or a cleaned descriptor
# (registration.dicom.deid_vocab). Binary VRs other than the pixel data are removed for the same reason.
TEXT_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "UR", "UN"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})
KEPT_BINARY_KEYWORDS = frozenset({"PixelData"})
# Clean Descriptors option: series descriptions say what the image is (needed to tell a T2 from an
# ADC in the import report); only their vocabulary words are kept (deid_vocab.words_clean).
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


def descriptor_clean(value: object) -> str:
    """A series/protocol description with only its vocabulary words (may be empty)."""
    return words_clean(str(value or ""), vocabulary=DESCRIPTOR_WORDS)


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
    _walk(
        ds,
        days=days,
        remap=lambda uid: uid_remap(uid, key=key, salt=salt),
        keep_descriptors=keep_descriptors,
    )
    for kw in PSEUDONYM_KEYWORDS:
        setattr(ds, kw, pseudonym)
    for kw in EMPTY_KEYWORDS:
        setattr(ds, kw, "")
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


def _text_clean(ds: Dataset, elem: DataElement, *, keep_descriptors: bool) -> None:
    """Keep a text element only as defined terms or vocabulary words; else remove it."""
    keyword = elem.keyword
    if keyword in CODE_TERMS:
        values = code_clean(keyword, elem.value)
        if values:
            ds[elem.tag].value = values if len(values) > 1 else values[0]
            return
    elif keyword in WORD_VOCABULARIES:
        text = words_clean(str(elem.value or ""), vocabulary=WORD_VOCABULARIES[keyword])
        if text:
            ds[elem.tag].value = text
            return
    del ds[elem.tag]


def _walk(
    ds: Dataset, *, days: int, remap: Callable[[str], str], keep_descriptors: bool = True
) -> None:
    ds.remove_private_tags()
    for elem in list(ds):
        keyword = elem.keyword
        if keep_descriptors and keyword in CLEAN_DESCRIPTOR_KEYWORDS and elem.VR in TEXT_VRS:
            _text_clean(ds, elem, keep_descriptors=True)
            continue
        if keyword in REMOVE_KEYWORDS:
            del ds[elem.tag]
            continue
        if not keyword:
            # Public tags unknown to pydicom: nothing says they are harmless.
            del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item, days=days, remap=remap, keep_descriptors=keep_descriptors)
        elif elem.VR in TEXT_VRS:
            _text_clean(ds, elem, keep_descriptors=keep_descriptors)
        elif (elem.VR in BINARY_VRS and keyword not in KEPT_BINARY_KEYWORDS) or elem.VR in (
            "PN",
            "TM",
            "DT",
        ):
            del ds[elem.tag]
        elif elem.VR == "DA":
            ds[elem.tag] = DataElement(elem.tag, "DA", date_shift(elem.value or "", days=days))
        elif elem.VR == "UI" and elem.value:
            values = elem.value if isinstance(elem.value, list | tuple) else [elem.value]
            new = [v if str(v).startswith(STANDARD_UID_ROOT) else remap(str(v)) for v in values]
            ds[elem.tag] = DataElement(elem.tag, "UI", new if len(new) > 1 else new[0])
