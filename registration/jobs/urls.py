"""Registration-job pages, progress JSON, QC images and /api/jobs/ (included by registration/urls.py,
so the names stay in the ``registration`` namespace)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from registration.jobs import api, views

_router = SimpleRouter()
_router.register("api/jobs", api.RegistrationJobViewSet, basename="api-job")

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", views.job_list_view, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail_view, name="job-detail"),
    path("jobs/<int:pk>/status.json", views.job_status_json, name="job-status-json"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_view, name="job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry_view, name="job-retry"),
    path("jobs/<int:pk>/qc/<str:name>.png", views.job_qc_view, name="job-qc"),
    path("cases/<int:pk>/register/", views.case_register_view, name="case-register"),
    path(
        "cohorts/<int:pk>/register-all/",
        views.cohort_register_all_view,
        name="cohort-register-all",
    ),
    path("cohorts/<int:pk>/jobs.json", views.cohort_jobs_json, name="cohort-jobs-json"),
    *_router.urls,
]
