"""Workshops: an instructor's class joining from one join code (docs/workshops.md).

Instructors (Django staff users), their workshops and the projector page; learners joining with
a display name and a PIN, each given a session started as the landing page's Start starts one.
May import :mod:`playground.sandboxes` and :mod:`playground.labs`; neither imports this package.
"""
