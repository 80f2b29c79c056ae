from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL no route matches: JSON under /api/ (what the API schema documents), the
    site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # Swagger UI from drf-spectacular-sidecar's static files, its start script from ?script=
        # (templates/drf_spectacular/swagger_ui.html): the site's CSP holds here too.
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("api/auth/token/", account_views.TokenCreateView.as_view(), name="api-token"),
    path(
        "api/auth/token/revoke/",
        account_views.TokenRevokeView.as_view(),
        name="api-token-revoke",
    ),
    path("", include("registration.urls")),
    path("", include("readerstudy.urls")),
    path("dicomweb/", include("dicomweb.urls")),
]
