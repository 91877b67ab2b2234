# syntax=docker/dockerfile:1
# Release Train: one image for the web process (default), the reconciler and the migration Job.
#   docker build -t release-train .
#   docker run -e DJANGO_SECRET_KEY=... -e DATABASE_URL=postgres://... \
#     -e DJANGO_ALLOWED_HOSTS=rt.example.com -p 8000:8000 release-train
#   docker run ... release-train python manage.py run_reconciler

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# msgfmt, for the compiled translations; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN pip install .
COPY . .
# Build-time values only: nothing connects to a database here.
RUN DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_SECRET_KEY=build-only-not-a-secret \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    sh -c 'if [ -d locale ]; then python manage.py compilemessages -v 0; fi \
           && python manage.py collectstatic --noinput -v 0'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# The entrypoint empties the metrics directory, then runs the command.
ENTRYPOINT ["/app/scripts/container-entrypoint"]
CMD ["gunicorn", "--config", "config/gunicorn.py", "config.wsgi"]
