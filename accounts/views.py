from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from rest_framework.authtoken.views import ObtainAuthToken

from accounts.permissions import user_is_coordinator, user_is_reader


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own start page."""
    if user_is_reader(request.user):
        return redirect("readerstudy:worklist-home")
    if user_is_coordinator(request.user):
        return redirect("registration:cohort-list")
    return render(request, "home.html")


class TokenCreateView(ObtainAuthToken):
    """POST username/password, get an API token (for scripts; the browser uses the session)."""
