from django.urls import path

from registration import api, views

app_name = "registration"
urlpatterns: list = [
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
    *api.urlpatterns,
]

# Registration jobs (issue 4): pages, progress JSON, QC images, /api/jobs/.
from registration.job_views import job_urlpatterns  # noqa: E402

urlpatterns += job_urlpatterns

# Reference standard of a cohort's cases (issue 12): coordinators fill it in without the admin.
from registration.reference_views import reference_urlpatterns  # noqa: E402

urlpatterns += reference_urlpatterns
