from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The registry mirror's seeding and import commands (``manage.py registry``)."""

    name = "playground.registry"
    label = "registry"
    verbose_name = "Registry"
