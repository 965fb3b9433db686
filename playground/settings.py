"""Django settings for Playground. Every value a deployment changes comes from the
environment through :mod:`playground.config` (documented in docs/configuration.md)."""

from __future__ import annotations

import secrets

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from playground import config

try:
    PLAYGROUND = config.load()
except config.ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None

BASE_DIR = config.REPO_DIR
DEBUG = PLAYGROUND.debug
ALLOWED_HOSTS = PLAYGROUND.allowed_hosts


def _secret_key() -> str:
    """PLAYGROUND_SECRET_KEY, or a random key kept in the web data directory."""
    if PLAYGROUND.secret_key:
        return PLAYGROUND.secret_key
    path = PLAYGROUND.web_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "playground.hosts",
    "playground.sandboxes",
    "playground.labs",
    "playground.sessiontemplates",
    "playground.registry",
    "playground.workshops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "playground.middleware.TranslatedErrors",  # API errors in the visitor's language
    "playground.middleware.SynchronousChain",  # last: the chain runs in one thread (see the module)
]

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "playground" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "playground.i18n.language",
            ],
            "builtins": ["playground.i18n"],  # {% t "key" %}: the page's language (playground/i18n.py)
        },
    },
]

_default_db = f"sqlite:///{PLAYGROUND.web_dir / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(PLAYGROUND.database_url or _default_db, conn_max_age=0)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web tier, the worker and beat read while one of them writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = PLAYGROUND.web_dir / "static"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"]
WHITENOISE_USE_FINDERS = True
# The front end's chunks are named by their content (frontend/build.mjs): cached for good (10 years, immutable).
WHITENOISE_IMMUTABLE_FILE_TEST = r"/chunks/[^/]+-[A-Z0-9]{8}\.js$"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [PLAYGROUND.redis_url], "capacity": 1000, "expiry": 30},
    },
}

CELERY_BROKER_URL = PLAYGROUND.redis_url
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_TASK_IGNORE_RESULT = True
# A sandbox host's tasks go to its own queue (docs/hosts.md, "A queue per host").
CELERY_TASK_ROUTES = ("playground.sandboxes.queues.route",)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_IMPORTS = ("playground.workshops.preparing",)  # a task outside a tasks module
CELERY_BEAT_SCHEDULE = {
    "prepare-workshops": {  # pooled sandboxes for the workshops about to start (docs/workshops.md)
        "task": "playground.workshops.preparing.prepare_workshops",
        "schedule": 30.0,  # preparing.PREPARE_INTERVAL (its reservations last three of these)
        "options": {"expires": 30.0},
    },
    "reap-expired-sessions": {
        "task": "playground.sandboxes.tasks.reap_expired",
        "schedule": float(PLAYGROUND.reaper_interval),
        "options": {"expires": float(PLAYGROUND.reaper_interval)},
    },
    "delete-old-recordings": {
        "task": "playground.workshops.tasks.delete_old_recordings",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "requeue-stuck-template-setups": {
        "task": "playground.sessiontemplates.tasks.requeue_stuck_setups",
        "schedule": float(PLAYGROUND.reaper_interval),
        "options": {"expires": float(PLAYGROUND.reaper_interval)},
    },
}

SESSION_COOKIE_HTTPONLY = True
# Behind PLAYGROUND_PROXY_COUNT proxies, a request is https when the proxy says it was reached so
# (X-Forwarded-Proto, which the proxy must set, not pass on: deploy/nginx/playground-proxy.conf does):
# Django's CSRF check compares the page's Origin with it, and visitors' cookies get Secure.
if PLAYGROUND.proxy_count:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
LOGIN_URL = "/accounts/login/"  # instructors sign in here (playground.workshops)
LOGIN_REDIRECT_URL = "/workshops/"
CSRF_FAILURE_VIEW = "playground.sandboxes.api.csrf_failure"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "playground": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django": {"handlers": ["console"], "level": "WARNING"},
    },
}
