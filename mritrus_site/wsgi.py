import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mritrus_site.settings")
django_application = get_wsgi_application()

# Stored DICOM instances and frames for coordinators skip Django's stack when nothing is unusual
# (dicomweb/fastpath.py); every other request, and every refusal, is Django's.
from dicomweb.fastpath import FastPath  # noqa: E402

application = FastPath(django_application)
