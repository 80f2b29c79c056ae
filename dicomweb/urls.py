"""DICOMweb (PS3.18) under /dicomweb/ (every cohort) and /dicomweb/cohorts/<id>/ (one cohort).

Paths have no trailing slash, as DICOMweb clients build them. The same views serve both roots;
the cohort root is the one STOW-RS stores into.
"""

from __future__ import annotations

from django.urls import URLPattern, path, register_converter

from . import views_retrieve as r
from . import views_search as s


class UidConverter:
    regex = r"[0-9]+(?:\.[0-9]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UidConverter, "uid")

app_name = "dicomweb"

ROUTES = [
    ("studies", s.studies_view, "studies"),
    ("series", s.series_search_view, "series-search"),
    ("instances", s.instances_search_view, "instances-search"),
    ("studies/<uid:study>", r.study_view, "study"),
    ("studies/<uid:study>/metadata", r.study_metadata_view, "study-metadata"),
    ("studies/<uid:study>/series", s.series_search_view, "study-series-search"),
    ("studies/<uid:study>/instances", s.instances_search_view, "study-instances-search"),
    ("studies/<uid:study>/series/<uid:series>", r.series_view, "series"),
    ("studies/<uid:study>/series/<uid:series>/metadata", r.series_metadata_view, "series-metadata"),
    (
        "studies/<uid:study>/series/<uid:series>/instances",
        s.instances_search_view,
        "series-instances-search",
    ),
    (
        "studies/<uid:study>/series/<uid:series>/instances/<uid:instance>",
        r.instance_view,
        "instance",
    ),
]
INSTANCE = "studies/<uid:study>/series/<uid:series>/instances/<uid:instance>"
ROUTES += [
    (f"{INSTANCE}/metadata", r.instance_metadata_view, "instance-metadata"),
    (f"{INSTANCE}/rendered", r.instance_rendered_view, "instance-rendered"),
    (f"{INSTANCE}/frames/<str:frames>", r.frames_view, "frames"),
    (f"{INSTANCE}/frames/<str:frames>/rendered", r.frames_rendered_view, "frames-rendered"),
    (f"{INSTANCE}/bulkdata/<str:tag>", r.bulkdata_view, "bulkdata"),
]

urlpatterns: list[URLPattern] = [path(route, view, name=name) for route, view, name in ROUTES] + [
    path(f"cohorts/<int:cohort>/{route}", view, name=f"cohort-{name}")
    for route, view, name in ROUTES
]
