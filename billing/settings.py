"""
Folio settings. Everything that differs between a laptop and production comes from the
environment; the defaults are safe for a local run on the embedded SQLite database.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("FOLIO_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production.")
    # Local runs only: production sets SECRET_KEY (and FOLIO_REQUIRE_SECRET_KEY=1). The
    # "django-insecure-" prefix makes `manage.py check --deploy` warn if it ever gets there.
    SECRET_KEY = "django-insecure-folio-local-development-key-change-me-in-production-0123"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "csp",
    "axes",
    "django_countries",
    "django_tasks",
    "django_tasks_db",
    "ninja",  # the API's docs page with its own Swagger UI files (no CDN: the CSP allows none)
    "counters",
    "billing",
]
# Fixed, whatever else is installed: the numbering benchmark's peer, django-sequences, is
# added by billing.settings_bench only.

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "billing.tenancy.CurrentCompanyMiddleware",
    "billing.middleware.MethodNotAllowedPageMiddleware",
    # The API: a POST with an Idempotency-Key runs in one transaction and is replayed.
    "billing.api.idempotency.IdempotencyMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billing.urls"
WSGI_APPLICATION = "billing.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "billing.context_processors.folio",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default. BEGIN IMMEDIATE takes the write lock when a transaction
# starts, so two writers serialise instead of failing with "database is locked" on upgrade.
SQLITE_DEFAULT = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": BASE_DIR / "db.sqlite3",
    "OPTIONS": {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    },
}

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = SQLITE_DEFAULT["OPTIONS"]
    else:
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        # Server-side binding plus a prepare threshold let psycopg prepare a statement that
        # a connection has run 5 times (the allocation above all), so that PostgreSQL stops
        # parsing and planning it each time; Django leaves preparing off unless asked.
        # Behind a transaction-pooling PgBouncer older than 1.21, set the threshold to "".
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = env_bool("DATABASE_SERVER_SIDE_BINDING", True)
        threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5")
        options["prepare_threshold"] = int(threshold) if threshold else None
        # No JIT: PostgreSQL compiles a query whose estimated cost is high (the dashboard's
        # sums over every invoice) in far more time than the compiled code then saves on
        # Folio's short queries.
        options.setdefault("options", "-c jit=off")
else:
    DATABASES = {"default": SQLITE_DEFAULT}

# --- Ledger key -----------------------------------------------------------------------------
# A secret the database does not hold: with it, ledger hashes are HMAC-SHA256 (so that
# database rights alone cannot recompute a consistent chain) and audit checkpoints are signed.
# FOLIO_LEDGER_KEY gives it inline, FOLIO_LEDGER_KEY_FILE names a file holding it (trailing
# whitespace ignored). Read once, here. None: plain SHA-256 hashes, no checkpoints.
def _ledger_key():
    inline = os.environ.get("FOLIO_LEDGER_KEY", "")
    path = os.environ.get("FOLIO_LEDGER_KEY_FILE", "")
    if inline and path:
        raise ImproperlyConfigured("Set FOLIO_LEDGER_KEY or FOLIO_LEDGER_KEY_FILE, not both.")
    if path:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"FOLIO_LEDGER_KEY_FILE {path!r} cannot be read: {error.strerror}.") from None
        if not key:
            raise ImproperlyConfigured(f"FOLIO_LEDGER_KEY_FILE {path!r} is empty.")
    else:
        key = inline.encode()
    if key and len(key) < 16:
        raise ImproperlyConfigured("The ledger key must be at least 16 bytes (use 32 random "
                                   "bytes, e.g. `openssl rand -hex 32`).")
    return key or None


FOLIO_LEDGER_KEY = _ledger_key()


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# counters is a reusable numbering app: it is told which model owns a numbering, and which
# companies a staff user may see in the admin (None: all).
COUNTERS_COMPANY_MODEL = "billing.Company"
# The model whose ids counters.IssuedNumber.client_id holds: the audit names clients by it.
COUNTERS_CLIENT_MODEL = "billing.Client"
COUNTERS_ADMIN_COMPANIES = "billing.tenancy.admin_companies"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a login while the username/address pair is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Five wrong passwords for one username from one address lock it out for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a proxy, let it tell the client's address (only when the proxy sets the header).
if env_bool("FOLIO_PROXY_SSL_HEADER"):
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
# Each company picks the locale its dates and amounts are shown in, each client the language
# of their documents, each user the language of the app. The catalogs are in the apps' own
# locale folders (billing/locale, counters/locale), which Django finds by itself.
LANGUAGES = [("en", "English"), ("en-gb", "English (UK)"), ("fr", "Français"),
             ("de", "Deutsch"), ("es", "Español"), ("it", "Italiano"), ("nl", "Nederlands")]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# SMTP when EMAIL_HOST is set, else the console (EMAIL_BACKEND overrides either).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", (
    "django.core.mail.backends.smtp.EmailBackend" if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "folio@localhost")
if os.environ.get("EMAIL_FILE_PATH"):  # with the file backend: one file per e-mail there
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
# A mail server that stops answering fails the attempt (which is retried) well within the
# jobs' lease below, so that a live attempt is never taken for a dead one.
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "60"))
if os.environ.get("EMAIL_HOST"):
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)

# --- Background jobs ------------------------------------------------------------------------
# Jobs (e-mailing documents) are rows of django-tasks-db's table, written in the transaction
# of the change that asks for them; `manage.py worker` runs them (README, "Background jobs").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# A job claimed longer ago than this (seconds) by a worker that never finished it is taken
# for abandoned (the worker died) and run again.
FOLIO_JOB_LEASE = int(os.environ.get("FOLIO_JOB_LEASE", "600"))
# Finished jobs (done or failed) are deleted by the periodic work this many days after they
# ended (billing.scheduling.prune); what they did stays recorded, e.g. as deliveries.
FOLIO_JOB_RETENTION_DAYS = int(os.environ.get("FOLIO_JOB_RETENTION_DAYS", "30"))
if FOLIO_JOB_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("FOLIO_JOB_RETENTION_DAYS is a number of days, at least 1.")
# An e-mail is tried this many times, waiting FOLIO_EMAIL_BACKOFF seconds after the first
# failure, doubling each time (at most an hour), then marked failed.
FOLIO_EMAIL_ATTEMPTS = int(os.environ.get("FOLIO_EMAIL_ATTEMPTS", "5"))
FOLIO_EMAIL_BACKOFF = int(os.environ.get("FOLIO_EMAIL_BACKOFF", "60"))
# Every this many seconds a worker writes the job that makes the recurring invoices and sends
# the reminders that are due (billing.scheduling); 0 turns it off (cron runs
# `manage.py run_schedules` instead).
FOLIO_SCHEDULE_INTERVAL = int(os.environ.get("FOLIO_SCHEDULE_INTERVAL", "300"))
# The API's idempotency keys are kept (and a retry replayed) at least this many hours;
# `manage.py prune_idempotency_keys` deletes older ones.
FOLIO_IDEMPOTENCY_HOURS = int(os.environ.get("FOLIO_IDEMPOTENCY_HOURS", "24"))

# --- Security -------------------------------------------------------------------------------
# Production sets FOLIO_BEHIND_TLS=1 (the site is only served over HTTPS) and, when a proxy
# terminates TLS and sets X-Forwarded-Proto (and strips it from clients),
# FOLIO_PROXY_SSL_HEADER=1. `manage.py check --deploy` then passes without warnings.
BEHIND_TLS = env_bool("FOLIO_BEHIND_TLS")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_TLS)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = BEHIND_TLS
CSRF_COOKIE_SECURE = BEHIND_TLS
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if BEHIND_TLS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", BEHIND_TLS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", BEHIND_TLS)
if env_bool("FOLIO_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 3600)))

# No inline scripts anywhere (the pages' JavaScript is in static files); inline styles are
# allowed because htmx and the admin set a few.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
