"""The workshops' websocket routes: the instructor's dashboard (:mod:`playground.workshops.consumers`).

Only these routes go through Channels' ``AuthMiddlewareStack`` (the instructor's sign-in, from
Django's session cookie); the learners' terminal routes (playground/sandboxes/routing.py) stay
without it, so their first prompt never waits on a session lookup.
"""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from playground.workshops.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/workshops/<int:workshop_id>/", AuthMiddlewareStack(DashboardConsumer.as_asgi())),
]
