"""Cohort import: an input (folder or zip; a manifest CSV or DICOM files only) becomes cases.

``archive`` opens the input safely, ``manifest`` and ``dicom_only`` list its cases, ``images``
reads their volumes, and ``run`` stores them through `registration.services` and keeps the report.
Only ``run`` writes.
"""
