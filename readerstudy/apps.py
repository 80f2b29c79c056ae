from django.apps import AppConfig


class ReaderstudyConfig(AppConfig):
    name = "readerstudy"
    verbose_name = "Reader studies"
