from django.urls import include, path
from rest_framework.routers import DefaultRouter

from readerstudy import api, views

app_name = "readerstudy"

router = DefaultRouter()
router.register("studies", api.StudyViewSet, basename="api-study")
router.register("worklist", api.WorklistViewSet, basename="api-worklist")
router.register("reads", api.ReadViewSet, basename="api-read")

urlpatterns = [
    path("studies/", views.study_list_view, name="study-list"),
    path("studies/new/", views.study_create_view, name="study-create"),
    path("studies/<int:pk>/", views.study_detail_view, name="study-detail"),
    path("studies/<int:pk>/generate/", views.study_generate_view, name="study-generate"),
    path("studies/<int:pk>/open/", views.study_open_view, name="study-open"),
    path("studies/<int:pk>/lock/", views.study_lock_view, name="study-lock"),
    path("studies/<int:pk>/snapshot/", views.study_snapshot_view, name="study-snapshot"),
    path(
        "studies/<int:pk>/reads/<int:read_pk>/reopen/",
        views.read_reopen_view,
        name="read-reopen",
    ),
    path("reading/", views.worklist_home_view, name="worklist-home"),
    path("reading/case/<str:token>/", views.viewer_view, name="viewer"),
    path("reading/case/<str:token>/draft/", views.read_draft_view, name="read-draft"),
    path("reading/case/<str:token>/preview.png", views.viewer_preview_view, name="viewer-preview"),
    path("reading/case/<str:token>/submit/", views.read_submit_view, name="read-submit"),
    path(
        "reading/series/<str:token>/manifest.json",
        views.series_manifest_view,
        name="series-manifest",
    ),
    path("reading/wado", views.wado_view, name="wado"),
    path("api/readerstudy/", include(router.urls)),
    # The analysis page, downloads and API, under the same paths and the readerstudy namespace.
    path("", include("readerstudy.analysis.urls")),
]
