"""Passwords are hashed with Argon2id; an older PBKDF2 hash still logs in and is upgraded then."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password

from accounts.models import User


@pytest.mark.django_db
def test_new_passwords_are_argon2id():
    user = User.objects.create_user(
        "hash-new", password="a long test password 1", role="coordinator"
    )
    assert user.password.startswith("argon2$argon2id$")


@pytest.mark.django_db
def test_pbkdf2_hash_logs_in_and_is_upgraded(client):
    old = make_password("a long test password 2", hasher="pbkdf2_sha256")
    user = User.objects.create(username="hash-old", password=old, role="coordinator")
    assert user.password.startswith("pbkdf2_sha256$")
    response = client.post(
        "/accounts/login/", {"username": "hash-old", "password": "a long test password 2"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
