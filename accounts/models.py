from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """A platform user with exactly one role.

    Readers carry their experience level and years of experience, which the reader-study design and
    the analysis use (junior vs senior); other roles must leave them empty.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        COORDINATOR = "coordinator", "Coordinator"
        READER = "reader", "Reader"

    class Level(models.TextChoices):
        JUNIOR = "junior", "Junior"
        SENIOR = "senior", "Senior"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.READER)
    reader_level = models.CharField(max_length=8, choices=Level.choices, blank=True, default="")
    years_experience = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["admin", "coordinator", "reader"]), name="user_role_valid"
            ),
            models.CheckConstraint(
                condition=(Q(role="reader") & Q(reader_level__in=["junior", "senior"]))
                | (~Q(role="reader") & Q(reader_level="")),
                name="user_reader_level_matches_role",
            ),
        ]

    @property
    def is_admin_role(self) -> bool:
        return self.role == self.Role.ADMIN or self.is_superuser

    @property
    def is_coordinator(self) -> bool:
        """Coordinators and admins may manage cohorts and studies."""
        return self.role in (self.Role.COORDINATOR, self.Role.ADMIN) or self.is_superuser

    @property
    def is_reader(self) -> bool:
        return self.role == self.Role.READER and not self.is_superuser
