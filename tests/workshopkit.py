"""Workshops on a real stack, for the tests and the classroom benchmark: an instructor and a workshop
made with ``manage.py shell``, and a cookie client that joins it as a browser's form would."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from typing import Any

from tests.stack import Stack

MAKE_WORKSHOP = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from playground.workshops.models import Workshop
owner = User.objects.create_user({user!r}, password={password!r}, is_staff=True)
now = timezone.now()
w = Workshop.objects.create(owner=owner, title={title!r}, capacity={capacity}, lab_slug={lab!r},
    lab_language={language!r}, starts_at=now + timedelta(minutes={starts_in}), ends_at=now + timedelta(hours=1){extra})
print(w.pk, w.join_code)
"""


def make_workshop(
    stack: Stack,
    user: str,
    password: str,
    title: str,
    capacity: int,
    image: str = "",
    lab: str = "",
    starts_in: int = -1,
) -> tuple[str, str]:
    """A workshop until an hour from now, starting ``starts_in`` minutes from now (open already by
    default), owned by a new staff user ``user``: its id and join code. ``lab`` names a lab (in
    English) or is empty for free sandboxes of ``image`` (empty: the default)."""
    script = MAKE_WORKSHOP.format(
        user=user,
        password=password,
        title=title,
        capacity=capacity,
        lab=lab,
        language="en" if lab else "",
        extra=f", image={image!r}" if image else "",
        starts_in=starts_in,
    )
    workshop_id, code = stack.manage("shell", "-c", script).split()[-2:]
    return workshop_id, code


class CookieClient:
    """Cookies and forms over ``http.client``, as a browser sends them (no redirect followed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def send(
        self, method: str, path: str, form: dict[str, str] | None = None, data: object = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with the jar's cookies (a ``form`` urlencoded with the CSRF token, or ``data``
        as JSON); keeps the cookies the answer sets."""
        connection = self.connect()
        headers = {
            "Cookie": self.cookie_header(),
            "Origin": self.origin(),
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
        }
        body = None
        if form is not None:
            body = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data)
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            for cookie in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, dict(response.headers), response.read()
        finally:
            connection.close()

    def connect(self) -> http.client.HTTPConnection:
        """A connection to the site (here the stack's web server on loopback, over plain HTTP)."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def origin(self) -> str:
        """The ``Origin`` of the page the browser would send from."""
        return f"http://127.0.0.1:{self.port}"

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def post_form(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` first (the CSRF cookie), then POST the form to it."""
        self.send("GET", path)
        return self.send("POST", path, form)

    def api(self, method: str, path: str) -> dict[str, Any]:
        """A JSON API call authorized by the session's cookie, as the page's own fetches are."""
        status, _, body = self.send(method, path, data={} if method == "POST" else None)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {body[:200]!r}")
        return dict(json.loads(body))

    def join(self, code: str, name: str) -> str:
        """Join workshop ``code`` as ``name`` (the join page's form); the session's id."""
        self.send("GET", f"/join/{code}")  # the CSRF cookie
        status, headers, body = self.send("POST", "/join", {"code": code, "name": name})
        found = re.fullmatch(r"/s/([0-9a-f-]{36})/", headers.get("Location", ""))
        if status != 302 or not found:
            raise RuntimeError(f"join answered {status} {headers.get('Location', '')!r}: {body[:300]!r}")
        return found.group(1)
