from django.apps import AppConfig


class HostsConfig(AppConfig):
    """The sandbox hosts of other machines behind the site: their records, placement, certificates."""

    name = "playground.hosts"
    label = "hosts"
    verbose_name = "Playground sandbox hosts"
    default_auto_field = "django.db.models.BigAutoField"
