from django.apps import AppConfig


class LabsConfig(AppConfig):
    """Labs loaded from folders (or Killercoda scenarios), and each session's progress in one."""

    name = "playground.labs"
    label = "labs"
    verbose_name = "Labs"
