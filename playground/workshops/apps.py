from django.apps import AppConfig


class WorkshopsConfig(AppConfig):
    name = "playground.workshops"
    label = "workshops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Add the ``workshop`` part to a learner's session JSON."""
        from playground.sandboxes import parts
        from playground.workshops.sessionpart import workshop_part

        parts.register("workshop", workshop_part)
