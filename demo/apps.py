from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The local demo that `make run` loads. It sits outside the apps because it needs all of them
    (users, simulated cohorts, registration jobs, a reader study); no app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
