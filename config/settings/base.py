"""Settings shared by every environment; each value can come from the environment."""

import logging
import os
import shlex
import sys
from pathlib import Path

import environ

from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# prometheus_client turns multiprocess mode on when this variable merely exists, and with an
# empty value writes its files into the working directory: empty means off, for every process
# (config/gunicorn.py does the same for gunicorn's master, which starts before the settings).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "applications",
    "releases",
    "builds",
    "deployments",
    "live",
]

MIDDLEWARE = [
    # First, so every log line of the request, other middleware's included, carries its id
    # (config.middleware, which the next entry imports, shapes its request line).
    "django_structlog.middlewares.RequestMiddleware",
    "config.middleware.RequestBudgetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database(var: str = "DATABASE_URL", default: str | None = None) -> dict:
    """The database at the URL in `var`, with the options its engine needs here."""
    config = env.db(var, default=default) if default else env.db(var)
    options = config.setdefault("OPTIONS", {})
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The demo's web workers and reconciler share one file: take the write lock when a
        # transaction begins and wait for it, rather than failing with "database is locked".
        options.update(
            transaction_mode="IMMEDIATE", timeout=20, init_command="PRAGMA journal_mode=WAL;"
        )
    elif env.bool("DJANGO_DB_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a statement run 5 times on a connection prepared:
        # planning the hot reads (a status's six-table join) costs PostgreSQL several times
        # what running them does. Off (false) behind a pooler that cannot keep prepared
        # statements (PgBouncer in transaction mode before 1.21).
        options.update(server_side_binding=True, prepare_threshold=5)
    return config


# The embedded default keeps `make run` free of services; production and tests use PostgreSQL.
DATABASES = {"default": database(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A permission is held globally (ModelBackend; ours reads a session's user and their permissions in
# one query) or for one application (guardian's object permissions). Nobody anonymous holds
# anything: guardian makes no anonymous user.
AUTHENTICATION_BACKENDS = [
    "utilities.auth.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None
# A user's object grants are read once per request and kept on that request's user object
# (applications/permissions.py reads them in one query), so a revoke counts from the next request.
GUARDIAN_AUTO_PREFETCH = True

# Django's database sessions, their read compiled once (utilities/sessions.py).
SESSION_ENGINE = "utilities.sessions"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
FORMAT_MODULE_PATH = ["config.formats"]  # one date format in every language (config/formats/)
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]  # vendored htmx
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# One structured line per event: "text" (key=value, for people) or "json" (for collectors).
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
# The request line says who, in our own fields (config.middleware); no client IP in the logs.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
DJANGO_STRUCTLOG_USER_ID_FIELD = None
DJANGO_STRUCTLOG_STATUS_4XX_LOG_LEVEL = logging.INFO

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "utilities.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["utilities.api.permissions.ModelViewPermissions"],
    # Request bodies are JSON only: anything else is 415, and the schema offers only JSON.
    "DEFAULT_PARSER_CLASSES": ["utilities.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "utilities.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "utilities.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "utilities.api.exceptions.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Release Train API",
    "DESCRIPTION": "Ship container images through pre and prod, and switch apps to new tags safely.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Tags and operation ids from the path after the version: batches, releases, builds, ...
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # Four models have a `status`; name each choice set once.
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "releases.choices.BatchStatus",
        "ReleaseStatusEnum": "releases.choices.ReleaseStatus",
        "DeploymentStatusEnum": "deployments.choices.DeploymentStatus",
        "BuildStatusEnum": "builds.choices.BuildStatus",
    },
}

# --- Release Train ---
# Shared secret of Drone's webhook step; when set, a signed notification needs no token.
BUILDS_WEBHOOK_SECRET = env("BUILDS_WEBHOOK_SECRET", default="")
BUILDS_WEBHOOK_MAX_BYTES = env.int("BUILDS_WEBHOOK_MAX_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = BUILDS_WEBHOOK_MAX_BYTES
# A body refused before it was read is still read off the connection, up to this much and this
# long, so the client gets the answer instead of a reset (utilities.wsgi).
REQUEST_DRAIN_MAX_BYTES = env.int("REQUEST_DRAIN_MAX_BYTES", default=8 * 1024 * 1024)
REQUEST_DRAIN_SECONDS = env.float("REQUEST_DRAIN_SECONDS", default=5.0)
# Whether a notification may name an application never seen before (it is then registered);
# off, such a notification is refused with 400 and nothing is written.
BUILDS_REGISTER_UNKNOWN_APPS = env.bool("BUILDS_REGISTER_UNKNOWN_APPS", default=True)

# --- Workflows: a transaction PostgreSQL aborts for a deadlock or serialization failure is
# run again up to this many times in all, pausing about base * 2^n seconds (jittered) between
# tries; then the answer is 503 `busy` with this Retry-After.
WORKFLOW_RETRY_ATTEMPTS = env.int("WORKFLOW_RETRY_ATTEMPTS", default=5)
WORKFLOW_RETRY_BASE_DELAY = env.float("WORKFLOW_RETRY_BASE_DELAY", default=0.05)
WORKFLOW_BUSY_RETRY_AFTER_SECONDS = env.int("WORKFLOW_BUSY_RETRY_AFTER_SECONDS", default=2)

# --- Deployments: executors and the reconciler (docs/operations.md) ---
# Executor that runs deployments: "kubernetes", "local" or a dotted path to a class.
DEPLOY_EXECUTOR = env("DEPLOY_EXECUTOR", default="local")
# Job names are "<prefix>-<app>-<deployment id>".
DEPLOY_JOB_NAME_PREFIX = env("DEPLOY_JOB_NAME_PREFIX", default="rt")
# Namespace per environment; an application's deploy_config[env]["namespace"] overrides it.
DEPLOY_NAMESPACES = {
    "pre": env("DEPLOY_NAMESPACE_PRE", default="release-train-pre"),
    "prod": env("DEPLOY_NAMESPACE_PROD", default="release-train-prod"),
}
# The Job's image and command (deploy_config "image"/"command" override them); the image may
# name {app}, {image_tag} and {environment}. Required with the kubernetes executor.
DEPLOY_JOB_IMAGE = env("DEPLOY_JOB_IMAGE", default="")
# What an application's deploy_config may ask for, as shell-style patterns (fnmatch: * ? [..]):
# namespaces (besides DEPLOY_NAMESPACES) and images (besides DEPLOY_JOB_IMAGE). Empty: only
# those defaults. Checked when the config is saved and again when a deployment launches.
DEPLOY_ALLOWED_NAMESPACES = env.list("DEPLOY_ALLOWED_NAMESPACES", default=[])
DEPLOY_ALLOWED_IMAGES = env.list("DEPLOY_ALLOWED_IMAGES", default=[])
DEPLOY_JOB_COMMAND = shlex.split(env("DEPLOY_JOB_COMMAND", default=""))
DEPLOY_JOB_SERVICE_ACCOUNT = env("DEPLOY_JOB_SERVICE_ACCOUNT", default="")
DEPLOY_JOB_BACKOFF_LIMIT = env.int("DEPLOY_JOB_BACKOFF_LIMIT", default=0)
DEPLOY_JOB_ACTIVE_DEADLINE_SECONDS = env.int("DEPLOY_JOB_ACTIVE_DEADLINE_SECONDS", default=1800)
# Keep finished Jobs long enough for a stopped reconciler to come back and read their result.
DEPLOY_JOB_TTL_SECONDS = env.int("DEPLOY_JOB_TTL_SECONDS", default=7 * 24 * 3600)
# In a pod the service account is used; elsewhere this kubeconfig (default: $KUBECONFIG or
# ~/.kube/config) and context.
DEPLOY_KUBECONFIG = env("DEPLOY_KUBECONFIG", default="")
DEPLOY_KUBE_CONTEXT = env("DEPLOY_KUBE_CONTEXT", default="")
DEPLOY_KUBERNETES_TIMEOUT = env.float("DEPLOY_KUBERNETES_TIMEOUT", default=10.0)
# The local executor runs this argv (split like a shell would, but no shell runs it).
DEPLOY_LOCAL_COMMAND = shlex.split(
    env(
        "DEPLOY_LOCAL_COMMAND",
        default=shlex.join([sys.executable, str(BASE_DIR / "scripts" / "demo_deploy.py")]),
    )
)
# The local executor's command sees only PATH, HOME, LANG, LC_ALL, TZ, the deployment's own
# variables and these names (the reconciler's database or cloud credentials never reach it).
DEPLOY_LOCAL_ENV_PASSTHROUGH = env.list(
    "DEPLOY_LOCAL_ENV_PASSTHROUGH", default=["DEMO_DEPLOY_SECONDS"]
)
DEPLOY_LOCAL_STATE_DIR = env("DEPLOY_LOCAL_STATE_DIR", default=str(BASE_DIR / "var" / "local-jobs"))
# Job deletions right after a switch or cancel run in its request; this caps their time
# there (the reconciler deletes whatever is left).
DEPLOY_CLEANUP_BUDGET_SECONDS = env.float("DEPLOY_CLEANUP_BUDGET_SECONDS", default=5.0)
# Watching the Jobs: each watch request lasts this long before it is renewed, and the whole
# list is read again this often as a safety net. Scope "namespaces" watches the configured
# namespaces and those of per-application overrides (a Role in each); "cluster" watches all
# (one request, a ClusterRole).
DEPLOY_KUBERNETES_WATCH_SECONDS = env.int("DEPLOY_KUBERNETES_WATCH_SECONDS", default=240)
DEPLOY_KUBERNETES_RESYNC_SECONDS = env.float("DEPLOY_KUBERNETES_RESYNC_SECONDS", default=600.0)
# Jobs per page of the informers' lists: memory holds one page of raw Jobs at a time.
DEPLOY_KUBERNETES_LIST_PAGE_SIZE = env.int("DEPLOY_KUBERNETES_LIST_PAGE_SIZE", default=500)
DEPLOY_KUBERNETES_WATCH_SCOPE = env("DEPLOY_KUBERNETES_WATCH_SCOPE", default="namespaces")
# The reconciler is woken by PostgreSQL NOTIFY when work commits; this interval is only the
# fallback. Without LISTEN (SQLite) it looks for work every DEPLOY_RECONCILER_POLL_SECONDS.
DEPLOY_RECONCILER_INTERVAL = env.float("DEPLOY_RECONCILER_INTERVAL", default=5.0)
DEPLOY_RECONCILER_POLL_SECONDS = env.float("DEPLOY_RECONCILER_POLL_SECONDS", default=0.5)
# LISTEN needs a session-level connection: behind PgBouncer in transaction mode, point this at
# PostgreSQL directly (a postgres:// URL). Empty: the default database's own settings.
DEPLOY_RECONCILER_LISTEN_URL = env("DEPLOY_RECONCILER_LISTEN_URL", default="")
# Job creations in flight at once per reconciler (threads that only talk to the executor).
DEPLOY_RECONCILER_LAUNCH_WORKERS = env.int("DEPLOY_RECONCILER_LAUNCH_WORKERS", default=16)
# A failed launch or Job deletion waits before its next attempt: BASE, doubled per failure
# in a row, at most MAX seconds.
DEPLOY_RETRY_BASE_SECONDS = env.float("DEPLOY_RETRY_BASE_SECONDS", default=1.0)
DEPLOY_RETRY_MAX_SECONDS = env.float("DEPLOY_RETRY_MAX_SECONDS", default=300.0)
# How long a reconciler owns a row it works on, renewed every third of it while the work goes
# on (at least 2 x DEPLOY_KUBERNETES_TIMEOUT). On PostgreSQL a dead reconciler's rows are taken
# over at once (its liveness lock goes with its session); the lease frees the rows of one that
# is alive but stuck (paused, a frozen VM), and is all there is on SQLite.
DEPLOY_RECONCILER_LEASE_SECONDS = env.float("DEPLOY_RECONCILER_LEASE_SECONDS", default=30.0)
# Rows claimed per transaction (launches, outcomes, cleanups); a tick goes on until no ready
# work is left.
DEPLOY_RECONCILER_BATCH = env.int("DEPLOY_RECONCILER_BATCH", default=100)
# A reconciler pod has no web server: with a port set it serves /metrics itself (0 = off).
DEPLOY_RECONCILER_METRICS_PORT = env.int("DEPLOY_RECONCILER_METRICS_PORT", default=0)
DEPLOY_RECONCILER_METRICS_ADDR = env("DEPLOY_RECONCILER_METRICS_ADDR", default="0.0.0.0")
