"""manage.py storage_cleanup [--delete]: list (or remove) media folders no database row refers to."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registration.storage import storage_orphans, storage_orphans_remove


class Command(BaseCommand):
    help = "List media folders without rows (interrupted imports, rolled-back writes); --delete removes them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--delete", action="store_true")
        parser.add_argument(
            "--older-than",
            "--tmp-older-than",
            dest="tmp_older_than",
            type=float,
            default=3600.0,
            help="seconds: only folders untouched for this long are orphans (a write in progress "
            "has no row yet)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        age = options["tmp_older_than"]
        paths = (
            storage_orphans_remove(tmp_older_than_s=age)
            if options["delete"]
            else storage_orphans(tmp_older_than_s=age)
        )
        verb = "removed" if options["delete"] else "orphan"
        for path in paths:
            self.stdout.write(f"{verb}: {path}")
        self.stdout.write(f"{len(paths)} folder(s) {verb if options['delete'] else 'found'}")
