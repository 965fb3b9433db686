from django.apps import AppConfig


class WorkshopsConfig(AppConfig):
    name = "playground.workshops"
    label = "workshops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Add the ``workshop`` part to a learner's session JSON; follow the labs' progress for the dashboard."""
        from playground.labs.signals import progress_changed
        from playground.sandboxes import parts
        from playground.workshops import receivers
        from playground.workshops.recordings import connect as connect_recordings
        from playground.workshops.sessionpart import workshop_part

        parts.register("workshop", workshop_part)
        connect_recordings()  # learners' terminals recorded, their lab steps marked
        progress_changed.connect(receivers.progress_changed, dispatch_uid="workshops-dashboard")
