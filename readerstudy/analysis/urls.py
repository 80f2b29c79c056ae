"""URL entries of the analysis page, downloads and API (included in readerstudy.urls)."""

from django.urls import path

from readerstudy.analysis import views

urlpatterns = [
    path("studies/<int:pk>/analysis/", views.AnalysisPageView.as_view(), name="analysis"),
    path(
        "studies/<int:pk>/analysis/snapshot/",
        views.AnalysisSnapshotCreateView.as_view(),
        name="analysis-snapshot",
    ),
    path(
        "studies/<int:pk>/analysis/figures/<slug:key>.<str:fmt>",
        views.AnalysisFigureView.as_view(),
        name="analysis-figure",
    ),
    path(
        "studies/<int:pk>/analysis/exports/<slug:key>/",
        views.AnalysisExportView.as_view(),
        name="analysis-export",
    ),
    path(
        "api/readerstudy/studies/<int:pk>/analysis/",
        views.AnalysisResultsAPIView.as_view(),
        name="api-analysis",
    ),
    path(
        "api/readerstudy/studies/<int:pk>/analysis/snapshots/",
        views.AnalysisSnapshotAPIView.as_view(),
        name="api-analysis-snapshot",
    ),
    path(
        "api/readerstudy/studies/<int:pk>/analysis/exports/<slug:key>/",
        views.AnalysisExportAPIView.as_view(),
        name="api-analysis-export",
    ),
    path(
        "api/readerstudy/studies/<int:pk>/analysis/figures/<slug:key>.<str:fmt>",
        views.AnalysisFigureAPIView.as_view(),
        name="api-analysis-figure",
    ),
]
