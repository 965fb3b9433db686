from django.contrib import admin

from playground.workshops.models import HelpRequest, Learner, Workshop


class LearnerInline(admin.TabularInline):
    model = Learner
    extra = 0
    fields = ["name", "session", "joined_at"]
    readonly_fields = ["name", "session", "joined_at"]
    can_delete = False


@admin.register(Workshop)
class WorkshopAdmin(admin.ModelAdmin):
    list_display = ["title", "join_code", "owner", "lab_slug", "image", "capacity", "starts_at", "ends_at"]
    list_filter = ["idle_reaping", "owner"]
    readonly_fields = ["join_code", "created_at"]
    inlines = [LearnerInline]


@admin.register(Learner)
class LearnerAdmin(admin.ModelAdmin):
    """Learners and their sessions; the PIN's hash and the sealed key are never shown."""

    list_display = ["name", "workshop", "session", "joined_at"]
    exclude = ["pin_hash", "sealed_key"]
    readonly_fields = ["workshop", "name", "session", "joined_at"]


@admin.register(HelpRequest)
class HelpRequestAdmin(admin.ModelAdmin):
    """Raised hands: who, what, when, and who resolved them (an open one has no resolved time)."""

    list_display = ["learner", "sentence", "raised_at", "resolved_at", "resolved_by"]
    list_filter = ["resolved_at"]
    readonly_fields = ["learner", "sentence", "raised_at", "resolved_at", "resolved_by"]
