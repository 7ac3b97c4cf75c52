"""Settings of the demo site: no database, no apps, DEBUG off as in production."""

SECRET_KEY = "demo-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

ROOT_URLCONF = "demosite.urls"
WSGI_APPLICATION = "demosite.wsgi.application"

INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True

# nginx serves these itself (deploy/demo/static); Django only writes the links.
STATIC_URL = "/static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
