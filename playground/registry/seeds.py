"""The seminar's images, as the mirror is seeded with them: what each is made of and how it starts.

Each :class:`Seed` is built on this host from Debian packages (no Docker Hub, no internet but
Debian's mirror through debootstrap) and pushed as ``library/<name>:<tag>`` for each of its tags,
the names a sandbox's engine asks its mirror for when a visitor types ``docker pull <name>``:

=============  ========================================================================
hello-world    our static ``recipes/docker/hello.c`` (the docker image's own), alone
busybox        Debian's busybox-static (this host's), its applets as hard links in /bin
debian         ``debootstrap --variant=minbase bookworm``, apt's lists emptied
httpd          the debian layer, then Debian's apache2 as a second layer: It works! on :80
nginx          the debian layer, then Debian's nginx as a second layer: Welcome to nginx!
=============  ========================================================================

httpd and nginx follow the official images where a Dockerfile or a lab can tell: httpd's
document root is ``/usr/local/apache2/htdocs`` (its working directory), it runs in the
foreground with Debian's ``envvars`` (``httpd-foreground``) and stops on SIGWINCH (graceful);
nginx serves ``/usr/share/nginx/html``, runs ``nginx -g 'daemon off;'`` and stops on SIGQUIT;
both log to the container's stdout and stderr. A seed's :meth:`Seed.digest` covers all of
this (files, commands, packages, the base's digest), and is the image's ``playground.seed.digest``
label: the mirror is up to date with a seed when its tags carry that digest.

Pure data; imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
HELLO_SOURCE = REPO_DIR / "recipes" / "docker" / "hello.c"
BUILD_VERSION = 2  # bump when the build changes what a seed makes
SUITE = "bookworm"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IT_WORKS = "<html><body><h1>It works!</h1></body></html>\n"

HTTPD_FOREGROUND = """#!/bin/sh
# Apache in the foreground with Debian's environment, as the official httpd image's httpd-foreground.
set -e
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
rm -f "$APACHE_PID_FILE"
exec /usr/sbin/apache2 -DFOREGROUND "$@"
"""

HTTPD_SITE = """<VirtualHost *:80>
\tServerAdmin webmaster@localhost
\tDocumentRoot /usr/local/apache2/htdocs
\tErrorLog /proc/self/fd/2
\tCustomLog /proc/self/fd/1 combined
</VirtualHost>
"""

HTTPD_CONF = """# The official httpd image's document root, and no warning about the server's name.
ServerName localhost
ErrorLog /proc/self/fd/2
<Directory /usr/local/apache2/htdocs>
\tOptions Indexes FollowSymLinks
\tAllowOverride None
\tRequire all granted
</Directory>
"""

NGINX_SITE = """server {
\tlisten 80 default_server;
\troot /usr/share/nginx/html;
\tindex index.html index.htm;
\tserver_name _;
\tlocation / {
\t\ttry_files $uri $uri/ =404;
\t}
}
"""


@dataclass(frozen=True)
class Seed:
    """One image of the mirror: how it is built (``kind``), what it holds, how ``docker run`` starts it."""

    name: str  # the Docker Hub name: library/<name> in the registry
    tags: tuple[str, ...]
    kind: str  # "program" (hello.c alone), "busybox" (the host's busybox-static), "debootstrap"
    description: str
    cmd: tuple[str, ...]
    base: str = ""  # the seed whose layers are under this one's (its layer is the difference)
    packages: tuple[str, ...] = ()  # debootstrap's --include (their dependencies come along)
    env: tuple[str, ...] = (PATH,)
    workdir: str = ""
    ports: tuple[str, ...] = ()
    stop_signal: str = ""
    files: tuple[tuple[str, str, int], ...] = ()  # (absolute path, content, mode) written after the install
    symlinks: tuple[tuple[str, str], ...] = ()  # (absolute path, target) made after the files
    copies: tuple[tuple[str, str], ...] = ()  # (from, to) inside the image, before the files
    remove: tuple[str, ...] = ()  # absolute paths or globs deleted after the install

    @property
    def reference(self) -> str:
        """The name under which the seed is pushed: ``library/<name>``."""
        return f"library/{self.name}"

    def digest(self, base_digest: str = "", inputs: str = "") -> str:
        """``sha256:<hex>`` of the definition, the base seed's digest and ``inputs`` (what else
        decides the bytes: the C source, the host package's version)."""
        content = {"seed": asdict(self), "base": base_digest, "inputs": inputs, "build_version": BUILD_VERSION}
        return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


SEEDS: tuple[Seed, ...] = (
    Seed(
        name="hello-world",
        tags=("latest",),
        kind="program",
        description="Playground's hello-world: a static program saying what `docker run hello-world` just did",
        cmd=("/hello",),
    ),
    Seed(
        name="busybox",
        tags=("latest",),
        kind="busybox",
        description="BusyBox from Debian's busybox-static, its applets in /bin",
        cmd=("sh",),
    ),
    Seed(
        name="debian",
        tags=("bookworm", "latest", "12"),
        kind="debootstrap",
        description="Debian 12 (bookworm), debootstrap's minbase variant, apt's package lists emptied",
        cmd=("bash",),
        env=(PATH,),
    ),
    Seed(
        name="httpd",
        tags=("latest", "2.4"),
        kind="debootstrap",
        description="Debian's Apache HTTP Server 2.4 (apache2) on debian:bookworm, in the foreground on port 80",
        cmd=("httpd-foreground",),
        base="debian",
        packages=("apache2",),
        workdir="/usr/local/apache2",
        ports=("80/tcp",),
        stop_signal="SIGWINCH",
        files=(
            ("/usr/local/apache2/htdocs/index.html", IT_WORKS, 0o644),
            ("/usr/local/bin/httpd-foreground", HTTPD_FOREGROUND, 0o755),
            ("/etc/apache2/sites-available/000-default.conf", HTTPD_SITE, 0o644),
            ("/etc/apache2/conf-enabled/zz-playground.conf", HTTPD_CONF, 0o644),
        ),
        symlinks=(
            ("/var/log/apache2/access.log", "/dev/stdout"),
            ("/var/log/apache2/other_vhosts_access.log", "/dev/stdout"),
            ("/var/log/apache2/error.log", "/dev/stderr"),
        ),
    ),
    Seed(
        name="nginx",
        tags=("latest",),
        kind="debootstrap",
        description="Debian's nginx on debian:bookworm, in the foreground on port 80",
        cmd=("nginx", "-g", "daemon off;"),
        base="debian",
        packages=("nginx",),
        ports=("80/tcp",),
        stop_signal="SIGQUIT",
        copies=(("/var/www/html/index.nginx-debian.html", "/usr/share/nginx/html/index.html"),),
        files=(("/etc/nginx/sites-available/default", NGINX_SITE, 0o644),),
        symlinks=(
            ("/var/log/nginx/access.log", "/dev/stdout"),
            ("/var/log/nginx/error.log", "/dev/stderr"),
        ),
    ),
)

BY_NAME = {seed.name: seed for seed in SEEDS}


def chain(seed: Seed) -> list[Seed]:
    """``seed``'s bases, bottom first, then ``seed``."""
    return (chain(BY_NAME[seed.base]) if seed.base else []) + [seed]
