"""Vocabularies of the Clean Descriptors option (PS3.15 E.3.5) and of the kept code strings.

A free-text attribute can hold anything a technologist typed ("t2 tra Doe John"), so a kept text
value keeps only the words listed here: words that say what the image is, never who it is of.
Anything else is dropped word by word; an attribute left empty is removed (the caller may put a
neutral value in its place).
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words of MR/US series and protocol names (lower case). Short on purpose: an unknown word costs a
# less descriptive label, a wrong word can cost a re-identification.
DESCRIPTOR_WORDS = _words(
    """
    t1 t2 t2w t1w pd tse fse frfse ssfse haste blade propeller space cube vista spc
    tra trans transversal axial ax cor coronal sag sagittal obl oblique iso
    2d 3d hr highres high res small large fov fs fatsat spair stir nfs
    adc dwi diff diffusion trace ep2d resolve bval calc ivim
    dce dyn dynamic vibe twist perf perfusion t1map pre post gad sub
    loc localizer localiser scout survey cal calibration
    prostate pelvis pelvic gland
    us trus ultrasound bmode b mode volume sweep seg label mask
    mr mri original registered fused derived
    """
)
# Word patterns also allowed: b-values (b800), numbers of up to 3 digits with a unit (3mm, 1.5t).
DESCRIPTOR_PATTERNS = (
    re.compile(r"^b\d{1,4}$"),
    re.compile(r"^\d{1,3}(mm|t|ms|s)?$"),
)
MANUFACTURER_WORDS = _words(
    """
    siemens healthineers healthcare ge general electric medical systems philips koninklijke
    toshiba canon hitachi fujifilm esaote bk b-k analogic samsung medison mindray hologic
    united imaging uih neusoft aloka supersonic imagine elekta koelis
    ag inc ltd gmbh co corp nv n.v. sa
    """
)
MODEL_WORDS = _words(
    """
    magnetom skyra prisma trio tim verio avanto aera vida espree symphony sonata sola altea lumina
    achieva ingenia intera elition evolution dstream signa hdxt hdx excite discovery mr750 mr750w
    premier architect pioneer artist hero vantage titan orian galan elan echelon oval
    flex focus flexfocus pro specto logiq voluson acuson sequoia s2000 epiq affiniti aixplorer
    3t 1.5t 3.0t 1.5 3.0 x
    """
)
# Code strings kept only with one of their defined terms (PS3.3), per value.
CODE_TERMS: dict[str, frozenset[str]] = {
    "Modality": frozenset({"MR", "US", "CT", "SEG", "OT", "REG", "SR", "PR", "KO"}),
    "ImageType": frozenset(
        {"ORIGINAL", "DERIVED", "PRIMARY", "SECONDARY", "M", "P", "R", "I", "ND", "NORM"}
        | {"DIS2D", "DIS3D", "DIFFUSION", "ADC", "TRACEW", "MPR", "OTHER", "AXIAL", "LOCALIZER"}
    ),
    "ScanningSequence": frozenset({"SE", "IR", "GR", "EP", "RM"}),
    "SequenceVariant": frozenset({"SK", "MTC", "SS", "TRSS", "SP", "MP", "OSP", "NONE"}),
    "ScanOptions": frozenset({"PER", "RG", "CG", "PPG", "FC", "PFF", "PFP", "SP", "FS", "SAT1"}),
    "MRAcquisitionType": frozenset({"2D", "3D"}),
    "PatientPosition": frozenset({"HFS", "HFP", "FFS", "FFP", "HFDR", "HFDL", "FFDR", "FFDL"}),
    "BodyPartExamined": frozenset({"PROSTATE", "PELVIS", "ABDOMEN", "ABDOMENPELVIS"}),
    "PhotometricInterpretation": frozenset({"MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR"}),
    "SpecificCharacterSet": frozenset({"", "ISO_IR 100", "ISO_IR 192", "ISO_IR 6"}),
    "RescaleType": frozenset({"US", "HU", "OD"}),
    "SegmentationType": frozenset({"BINARY", "FRACTIONAL"}),
    "BurnedInAnnotation": frozenset({"YES", "NO"}),
    "PatientIdentityRemoved": frozenset({"YES", "NO"}),
    "LongitudinalTemporalInformationModified": frozenset({"MODIFIED", "UNMODIFIED", "REMOVED"}),
}
# Free-text attributes kept after vocabulary cleaning (the rest of the text VRs are removed).
WORD_VOCABULARIES: dict[str, frozenset[str]] = {
    "SeriesDescription": DESCRIPTOR_WORDS,
    "ProtocolName": DESCRIPTOR_WORDS,
    "Manufacturer": MANUFACTURER_WORDS,
    "ManufacturerModelName": MODEL_WORDS,
}
_SPLIT = re.compile(r"([^A-Za-z0-9.\-]+)")


def _word_ok(word: str, vocabulary: frozenset[str]) -> bool:
    low = word.lower()
    if low in vocabulary:
        return True
    return vocabulary is DESCRIPTOR_WORDS and any(p.match(low) for p in DESCRIPTOR_PATTERNS)


def words_clean(text: str, *, vocabulary: frozenset[str], max_length: int = 64) -> str:
    """Keep the words of ``text`` found in ``vocabulary`` with the separators between them.

    ``"t2 tra Doe John"`` → ``"t2 tra"``, ``"t2_tse_tra"`` stays, ``"ADC DOE^JOHN MRN7654321"`` →
    ``"ADC"``. A dotted or hyphenated word is kept only whole.
    """
    parts = _SPLIT.split(str(text))
    kept: list[str] = []
    separator = ""
    for index, part in enumerate(parts):
        if index % 2 == 1:
            separator = part if kept else ""
            continue
        if part and _word_ok(part, vocabulary):
            # A caret separates a person's name parts: never keep it as a separator.
            kept.append((" " if "^" in separator else separator) + part)
            separator = ""
    return "".join(kept).strip()[:max_length]


def code_clean(keyword: str, value: object) -> list[str]:
    """The values of a coded attribute that are defined terms (``[]``: remove the attribute)."""
    terms = CODE_TERMS[keyword]
    values = [value] if isinstance(value, str | bytes) or value is None else list(value)  # type: ignore[call-overload]
    return [str(v) for v in values if str(v).strip().upper() in terms]
