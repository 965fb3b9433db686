from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from playground.sandboxes.agentclient import client
from playground.sandboxes.models import Image, Instance, Session
from sandbox.wire.protocol import AgentError


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


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    """The sandbox host's images, read from its agent on every listing. Building, importing and
    removing them is ``python -m sandbox.images`` as root on that host (docs/images.md)."""

    list_display = ["name", "tag", "size_mib", "layers", "created", "source"]
    readonly_fields = ["name", "tag", "digest", "size", "layers", "created", "source", "refreshed_at"]

    @admin.display(description="size (MiB)", ordering="size")
    def size_mib(self, image: Image) -> str:
        return f"{image.size / 1024**2:.1f}"

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        try:
            Image.refresh(client().call("images").get("details", []))
        except AgentError as exc:
            self.message_user(request, f"The list may be out of date: {exc.message}", messages.WARNING)
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        return False
