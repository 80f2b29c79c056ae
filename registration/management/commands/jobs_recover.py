"""Re-queue registration jobs whose worker stopped sending heartbeats (cron or by hand).

Workers already do this at start-up and periodically; this command is for a node whose workers
are all gone, or to check from the web node.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from registration.jobs.recovery import jobs_requeue_stale


class Command(BaseCommand):
    help = "Re-queue (or fail, after max attempts) registration jobs with a stale heartbeat."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = jobs_requeue_stale()
        for pk, status in changed:
            self.stdout.write(f"job {pk}: {status}")
        self.stdout.write(f"{len(changed)} stale job(s) handled.")
