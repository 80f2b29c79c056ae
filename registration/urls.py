from django.urls import path  # noqa: F401

app_name = "registration"
urlpatterns: list = []

# Registration jobs (issue 4): pages, progress JSON, QC images, /api/jobs/.
from registration.job_views import job_urlpatterns  # noqa: E402

urlpatterns += job_urlpatterns
