"""`manage.py check --deploy` checks of the pseudonymisation settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

# The fallback key of DEBUG runs (mritrus_site/settings.py): public, so never a salt in production.
INSECURE_KEY_PREFIX = "insecure-"


@register(Tags.security, deploy=True)
def deid_salt_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """The salt must be its own secret: anyone who knows it can recompute a pseudonym (UID, date
    shift, DICOM-only case code) from a patient ID, and every node must share it."""
    salt = str(getattr(settings, "MRITRUS_DEID_SALT", "") or "")
    problems: list[Warning] = []
    if not getattr(settings, "MRITRUS_DEID_SALT_FROM_ENV", False):
        problems.append(
            Warning(
                "MRITRUS_DEID_SALT is not set: pseudonyms are salted with the secret key, which "
                "then can never be rotated without changing every pseudonym.",
                hint="Set MRITRUS_DEID_SALT to a long random value, the same on every node, "
                "before the first import of real data.",
                id="mritrus.W001",
            )
        )
    if len(salt) < 32 or salt.startswith(INSECURE_KEY_PREFIX):
        problems.append(
            Warning(
                "MRITRUS_DEID_SALT is shorter than 32 characters or a public development value.",
                hint="Use e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'.",
                id="mritrus.W002",
            )
        )
    return problems
