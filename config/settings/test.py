"""Tests run on PostgreSQL: the row locks and constraints under test are PostgreSQL's."""

from .base import *  # noqa: F403
from .base import database

DATABASES = {"default": database(default="postgres://postgres@127.0.0.1:5432/releasetrain")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BUILDS_WEBHOOK_SECRET = ""
DEPLOY_EXECUTOR = "local"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are served from the finders in tests; nothing is collected beforehand.
WHITENOISE_AUTOREFRESH = True
