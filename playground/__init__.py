"""Playground: a self-hosted browser playground with real root shells in ephemeral sandboxes."""
