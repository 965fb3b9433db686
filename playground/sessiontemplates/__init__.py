"""Session templates: data files that start a session of several nodes and run a setup script on
each (docs/templates.md)."""
