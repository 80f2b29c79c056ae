"""Role checks shared by views and the API. Object checks live next to each view's queryset."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission


def user_is_admin(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.role == "admin"))


def user_is_coordinator(user: Any) -> bool:
    """Coordinator or admin."""
    return bool(
        user.is_authenticated and (user.is_superuser or user.role in ("coordinator", "admin"))
    )


def user_is_reader(user: Any) -> bool:
    return bool(user.is_authenticated and user.role == "reader" and not user.is_superuser)


View = Callable[..., HttpResponse]


def coordinator_required(view: View) -> View:
    """Function views for coordinators and admins: login first, then readers get 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not user_is_coordinator(request.user):
            raise PermissionDenied("coordinators only")
        return view(request, *args, **kwargs)

    return wrapped


def reader_required(view: View) -> View:
    """Function views for readers: login first, then anyone else gets 404.

    404 rather than 403 is the same answer as for another reader's object: nothing here exists for
    non-readers, so the response cannot be used to probe which studies exist.
    """

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not user_is_reader(request.user):
            raise Http404("not found")
        return view(request, *args, **kwargs)

    return wrapped


class CoordinatorRequiredMixin(LoginRequiredMixin):
    """Class-based views for coordinators and admins; readers get 403, anonymous users a login."""

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.user.is_authenticated and not user_is_coordinator(request.user):
            raise PermissionDenied("coordinators only")
        return super().dispatch(request, *args, **kwargs)


class AdminRequiredMixin(LoginRequiredMixin):
    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.user.is_authenticated and not user_is_admin(request.user):
            raise PermissionDenied("admins only")
        return super().dispatch(request, *args, **kwargs)


class ReaderRequiredMixin(LoginRequiredMixin):
    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.user.is_authenticated and not user_is_reader(request.user):
            raise PermissionDenied("readers only")
        return super().dispatch(request, *args, **kwargs)


class IsCoordinator(BasePermission):
    message = "Coordinators and admins only."

    def has_permission(self, request: Any, view: Any) -> bool:
        return user_is_coordinator(request.user)


class IsAdminRole(BasePermission):
    message = "Admins only."

    def has_permission(self, request: Any, view: Any) -> bool:
        return user_is_admin(request.user)


class IsReader(BasePermission):
    message = "Readers only."

    def has_permission(self, request: Any, view: Any) -> bool:
        return user_is_reader(request.user)
