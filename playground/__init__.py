"""Playground's web tier (Django, Channels, Celery, the launcher); of the sandbox host it imports only sandbox.wire."""
