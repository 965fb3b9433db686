"""manage.py commands of the sandboxes app; they import the app's own modules (and through them sandbox.wire)."""
