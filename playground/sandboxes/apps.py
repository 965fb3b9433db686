from django.apps import AppConfig


class SandboxesConfig(AppConfig):
    """Sessions, their sandbox instances, the API, the terminal consumer and the tasks."""

    name = "playground.sandboxes"
    label = "sandboxes"
    verbose_name = "Playground sessions"

    def ready(self) -> None:
        import playground.celery  # noqa: F401  (binds shared tasks to the configured broker)
