from django.contrib import admin

from playground.sandboxes.models import Instance, Session


class InstanceInline(admin.TabularInline):
    model = Instance
    extra = 0
    readonly_fields = ["name", "state", "error", "created_at"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "state", "ended_reason", "created_at", "expires_at", "client_address"]
    list_filter = ["state", "ended_reason", "image"]
    readonly_fields = ["key_hash"]
    inlines = [InstanceInline]
