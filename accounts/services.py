"""Writes for accounts: API tokens (issue, revoke)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.authentication import token_expired


def token_issue(*, user: Any) -> Token:
    """The user's API token: the current one, or a new one when there is none or it expired."""
    with transaction.atomic():
        token = Token.objects.select_for_update().filter(user=user).first()
        if token is not None and token_expired(token):
            token.delete()
            token = None
        return token or Token.objects.create(user=user)


def token_revoke(*, user: Any) -> bool:
    """Delete the user's API token; True when there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
