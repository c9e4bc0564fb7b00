"""Django settings of the SensorThings API 1.1 server the sensorthings source test runs on
loopback (django-ogc-sensorthings with its Django ORM backend on SQLite).

STA_DB: the SQLite file; STA_SERVICE_URL: the service URL used in self and next links."""

import os
from uuid import UUID

SECRET_KEY = "ioc-console-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "sensorthings.versions.v1_1",
    "sensorthings.versions.v1_1.backends.django",
]
ROOT_URLCONF = "urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["STA_DB"]}}
USE_TZ = True
SENSORTHINGS_V1_1_SERVICE_URL = os.environ["STA_SERVICE_URL"]
SENSORTHINGS_V1_1_BACKEND_ADAPTER = (
    "sensorthings.versions.v1_1.backends.django.adapter.DjangoBackendAdapter"
)
SENSORTHINGS_V1_1_ID_TYPE = UUID
SENSORTHINGS_V1_1_ID_DELIMITER = "'"
SENSORTHINGS_V1_1_DOCS_ENABLED = False
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
