"""Passwords are hashed with Argon2id (OWASP parameters); an older PBKDF2 hash, or an Argon2 hash
with other parameters, still logs in and is upgraded then."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password

from accounts.models import User


@pytest.mark.django_db
def test_new_passwords_are_argon2id():
    user = User.objects.create_user(
        "hash-new", password="a long test password 1", role="coordinator"
    )
    # m=47104 KiB, t=1, p=1: OWASP's first recommended configuration.
    assert user.password.startswith("argon2$argon2id$v=19$m=47104,t=1,p=1$")


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
    assert user.password.startswith("argon2$argon2id$v=19$m=47104,t=1,p=1$")


@pytest.mark.django_db
def test_argon2_hash_with_other_parameters_is_upgraded(client):
    django_argon2 = Argon2PasswordHasher()  # Django's own parameters
    old = django_argon2.encode("a long test password 3", django_argon2.salt())
    assert "m=102400,t=2,p=8" in old
    user = User.objects.create(username="hash-argon", password=old, role="coordinator")
    response = client.post(
        "/accounts/login/", {"username": "hash-argon", "password": "a long test password 3"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert "m=47104,t=1,p=1" in user.password
