"""Settings of the benchmark: production-like (DEBUG off, PostgreSQL, persistent connections as
in production), the bench's own database, and a URL conf that adds the floor views."""

from config.settings.base import *  # noqa: F403
from config.settings.base import database, env

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
DATABASES = {
    "default": database("BENCH_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/rt_bench")
}
ROOT_URLCONF = "bench.urls"
DEPLOY_EXECUTOR = "local"
# The product's request log stays on (it is part of the cost of every request, the floor's too).
# As in production (config.settings.production): connections are kept between requests.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
