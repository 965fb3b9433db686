"""Labs in the admin, read-only: a lab's source of truth is its folder in git, loaded with
``manage.py labs load`` (docs/labs.md); an edit here would be overwritten by the next load."""

from django.contrib import admin
from django.http import HttpRequest

from playground.labs.models import Lab, Progress, Step


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StepInline(ReadOnly, admin.StackedInline):
    model = Step
    extra = 0
    fields = ["number", "title", "foreground", "setup_script", "check_script", "solve_script"]


@admin.register(Lab)
class LabAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["slug", "language", "title", "image", "difficulty", "origin", "loaded_at"]
    list_filter = ["language", "difficulty", "origin", "image"]
    search_fields = ["slug", "title", "summary"]
    exclude = ["intro_html", "finish_html"]
    inlines = [StepInline]


@admin.register(Progress)
class ProgressAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["session", "lab", "current", "started_at", "finished_at"]
    list_filter = ["lab"]
