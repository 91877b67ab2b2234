"""Production: every secret comes from the environment and nothing insecure has a default."""

from .base import *  # noqa: F403
from .base import database, env, logging_config

SECRET_KEY = env("DJANGO_SECRET_KEY")
# Kubelet probes and Prometheus scrapes reach a pod by its IP (deploy/kubernetes sets POD_IP).
if POD_IP := env("POD_IP", default=""):
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, POD_IP]  # noqa: F405
DATABASES = {"default": database()}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEPLOY_EXECUTOR = env("DEPLOY_EXECUTOR", default="kubernetes")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
# Preloading binds the whole domain to HTTPS for months and is hard to undo: the operator opts
# in with DJANGO_SECURE_HSTS_PRELOAD=true; until then its reminder is not a problem to report.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True

LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
