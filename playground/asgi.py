"""The ASGI application served by Daphne: Django for HTTP, Channels for terminal websockets and the
workshops' (only those routes wrap Channels' AuthMiddlewareStack, each in its own routing module)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from playground.sandboxes.filesapi import UploadLimit  # noqa: E402
from playground.sandboxes.routing import websocket_urlpatterns  # noqa: E402
from playground.workshops.routing import websocket_urlpatterns as dashboard_urlpatterns  # noqa: E402
from playground.workshops.watch import websocket_urlpatterns as watch_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": UploadLimit(django_asgi_app),  # an upload over the limit is refused before Django reads it
        "websocket": URLRouter([*websocket_urlpatterns, *watch_urlpatterns, *dashboard_urlpatterns]),
    }
)
