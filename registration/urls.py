"""The registration app's URLs: cohorts, imports, cases, series, WADO-URI, the reference page, the
API, and the job URLs of `registration.jobs.urls`."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from registration import api, reference_views, views

app_name = "registration"

_router = SimpleRouter()
_router.register("api/cohorts", api.CohortViewSet, basename="api-cohort")
_router.register("api/cases", api.CaseViewSet, basename="api-case")
_router.register("api/series", api.SeriesViewSet, basename="api-series")
_router.register("api/imports", api.ImportRunViewSet, basename="api-import")

urlpatterns: list[URLPattern | URLResolver] = [
    path("cohorts/", views.cohort_list_view, name="cohort-list"),
    path("cohorts/upload/", views.cohort_upload_view, name="cohort-upload"),
    path("cohorts/<int:pk>/", views.cohort_detail_view, name="cohort-detail"),
    path("imports/<int:pk>/", views.import_detail_view, name="import-detail"),
    path("imports/progress.json", views.import_progress_view, name="import-progress"),
    path("cases/<int:pk>/", views.case_detail_view, name="case-detail"),
    path("cases/<int:pk>/delete/", views.case_delete_view, name="case-delete"),
    path("series/<int:pk>/thumbnail.png", views.series_thumbnail_view, name="series-thumbnail"),
    path("series/<int:pk>/manifest.json", views.series_manifest_view, name="series-manifest"),
    path("wado", views.wado_view, name="wado"),
    path("api/cohorts/upload/", api.CohortUploadAPIView.as_view(), name="api-cohort-upload"),
    *_router.urls,
    # Registration jobs (issue 4): pages, progress JSON, QC images, /api/jobs/.
    path("", include("registration.jobs.urls")),
    # Reference standard of a cohort's cases (issue 12): coordinators fill it in without the admin.
    path(
        "cohorts/<int:pk>/reference/",
        reference_views.cohort_reference_view,
        name="cohort-reference",
    ),
]
