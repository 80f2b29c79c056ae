from __future__ import annotations

from typing import Any

from django import forms


class CohortUploadForm(forms.Form):
    cohort_name = forms.CharField(
        max_length=200,
        required=False,
        help_text="New or existing cohort; empty gives a neutral name (never the file's name).",
    )
    archive = forms.FileField(
        help_text="A .zip with manifest.csv and the images it lists, or DICOM files only."
    )

    def clean_archive(self) -> Any:
        archive = self.cleaned_data["archive"]
        if not archive.name.lower().endswith(".zip"):
            raise forms.ValidationError("Upload a .zip file.")
        return archive
