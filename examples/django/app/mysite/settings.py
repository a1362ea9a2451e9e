"""Settings of the example site.

Everything is read from the release this file is in: verbatim's artifact
holds the code, the templates and, at mysite/static/staticfiles.json, the
names `verbatim build` gave the assets (`assets.django_manifest`). Django's
ManifestStaticFilesStorage reads that file, so {% static "css/site.css" %}
renders STATIC_URL + "css/site.<hash>.css", the object `verbatim publish`
stored under assets/. collectstatic is never run.
"""

import os
from pathlib import Path

# The release directory (with `verbatim deploy`, DIR/releases/<hex>).
BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = []
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mysite" / "templates"],
    }
]
DATABASES = {}
USE_TZ = True

# Where the CDN in front of the store serves its assets/ prefix.
STATIC_URL = os.environ.get("DJANGO_STATIC_URL", "https://cdn.example.com/assets/")
# Where Django looks for staticfiles.json: the artifact has it there.
STATIC_ROOT = BASE_DIR / "mysite" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
    },
}
