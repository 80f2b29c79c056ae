from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.authentication import token_expires_at
from accounts.permissions import user_is_coordinator, user_is_reader
from accounts.services import token_issue, token_revoke


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own start page."""
    if user_is_reader(request.user):
        return redirect("readerstudy:worklist-home")
    if user_is_coordinator(request.user):
        return redirect("registration:cohort-list")
    return render(request, "home.html")


class TokenAnswerSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()


class TokenCreateView(ObtainAuthToken):
    """POST username/password, get an API token (for scripts; the browser uses the session).

    Throttled per address (``MRITRUS_TOKEN_RATE``) and locked out with the login form after
    repeated wrong passwords (django-axes); the token expires after ``MRITRUS_TOKEN_TTL_HOURS``.
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: TokenAnswerSerializer,
            400: OpenApiResponse(description="bad login"),
            429: OpenApiResponse(description="throttled or locked out"),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        # django-axes flags the request it was given (this DRF request) when the username and
        # address are locked out; `authenticate` then answers None like for a wrong password.
        if getattr(request, "axes_locked_out", False):
            return Response(
                {"detail": "Too many failed logins for this account; try again later."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        if not valid:
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        token = token_issue(user=serializer.validated_data["user"])
        return Response({"token": token.key, "expires_at": token_expires_at(token)})


class TokenRevokeView(APIView):
    """POST (authenticated by the token itself, or a session): the user's token stops working."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
