from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the demo (simulated cohorts, users by role, an open reader study). Idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--study-cases", type=int, default=8)
        parser.add_argument("--register-cases", type=int, default=4)

    def handle(self, *args: Any, **opts: Any) -> None:
        from demo.setup import demo_setup

        logins = demo_setup(
            echo=self.stdout.write,
            n_study_cases=opts["study_cases"],
            n_register_cases=opts["register_cases"],
        )
        self.stdout.write("Demo ready. Logins (local demo only):")
        for login in logins:
            self.stdout.write(f"  {login.username:12s} {login.password:14s} {login.role}")
