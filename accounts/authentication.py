"""API tokens that expire (DRF's own never do) and can be revoked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


def token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(hours=float(settings.MRITRUS_TOKEN_TTL_HOURS))


def token_expired(token: Token) -> bool:
    return timezone.now() >= token_expires_at(token)


class ExpiringTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, refused once ``MRITRUS_TOKEN_TTL_HOURS`` have passed since
    the token was issued; an expired token is deleted so it can never come back."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            token.delete()
            raise AuthenticationFailed("Token expired; request a new one at /api/auth/token/.")
        return user, token
