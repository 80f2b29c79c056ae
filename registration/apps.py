from django.apps import AppConfig


class RegistrationConfig(AppConfig):
    name = "registration"
    verbose_name = "Cohorts, images and registration"

    def ready(self) -> None:
        from registration import checks  # noqa: F401  (registers the deploy checks)

        # Queue workers (db_worker, rqworker) recover stale registration jobs at start-up and
        # periodically; other processes skip this.
        from registration.jobs.recovery import worker_process_start

        worker_process_start()
