from django.apps import AppConfig


class SessionTemplatesConfig(AppConfig):
    """Templates read from ``PLAYGROUND_TEMPLATES_DIR``, and the setup run of each session started from one."""

    name = "playground.sessiontemplates"
    label = "sessiontemplates"
    verbose_name = "Session templates"
