"""gunicorn settings for the web process (the demo and the container); all from the environment.

`gunicorn --config config/gunicorn.py config.wsgi`
"""

import os

# prometheus_client switches to multiprocess mode when the variable merely exists, and an empty
# value would then write its files into the working directory: empty means "off".
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from prometheus_client import multiprocess

from config.logging import logging_config

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# Django's logging (config.middleware) writes one line per request, with its request id and
# user; gunicorn's access log would repeat it without them.
accesslog = None
errorlog = "-"
# gunicorn's own lines (start, worker exits) in the same format as the application's.
logconfig_dict = logging_config(
    log_format=os.environ.get("LOG_FORMAT", "text"), level=os.environ.get("LOG_LEVEL", "INFO")
)
# No control socket (gunicorn >= 27): it lives in $HOME, which is read-only in the container,
# and two servers on one host (the demo and the smoke test) would fight over it.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    # A dead worker's live gauges must stop counting; its counters stay summed in.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
