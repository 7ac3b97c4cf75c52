"""Settings for the demo site: production-like (DEBUG off), no database, no middleware."""

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"

# No apps, no middleware, no database: the views only echo the request, so nothing needs
# migrations and the nodes start fast.
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}

# The echo view streams the body itself; let any size through Django's guards.
DATA_UPLOAD_MAX_MEMORY_SIZE = None

USE_TZ = True

# Tracebacks go to stderr, which is the uWSGI node's log, so a failing test shows why.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
