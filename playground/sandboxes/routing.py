from django.urls import path

from playground.sandboxes.consumers import TerminalConsumer

websocket_urlpatterns = [
    path("ws/sessions/<str:session>/<str:instance>/", TerminalConsumer.as_asgi()),
    path("ws/sessions/<str:session>/<str:instance>/<int:terminal>/", TerminalConsumer.as_asgi()),
]
