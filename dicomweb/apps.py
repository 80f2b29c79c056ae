from django.apps import AppConfig


class DicomwebConfig(AppConfig):
    name = "dicomweb"
    verbose_name = "DICOMweb (QIDO-RS, WADO-RS, STOW-RS)"
