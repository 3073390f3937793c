"""WSGI entry point: plain HTTP (admin, API, pages) from gunicorn's sync workers."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
