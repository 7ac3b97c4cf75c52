"""WSGI entry point: `uwsgi --module demosite.wsgi --chdir deploy/demo/site`."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demosite.settings")

application = get_wsgi_application()
