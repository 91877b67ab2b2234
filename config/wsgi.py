import os

from django.core.wsgi import get_wsgi_application

from utilities.wsgi import DrainUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = DrainUnreadBody(get_wsgi_application())
