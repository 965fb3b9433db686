from django.apps import AppConfig
from django.db.backends.signals import connection_created

from playground.sandboxes import sqlitelog


class SandboxesConfig(AppConfig):
    """Sessions, their sandbox instances, the API, the terminal consumer and the tasks."""

    name = "playground.sandboxes"
    label = "sandboxes"
    verbose_name = "Playground sessions"

    def ready(self) -> None:
        import playground.celery  # noqa: F401  (binds shared tasks to the configured broker)

        connection_created.connect(sqlitelog.hold_log_open)
