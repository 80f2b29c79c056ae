import os
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mritrus_site.settings")
django_application = get_wsgi_application()

# Stored DICOM instances, frames, DICOMweb searches and the reader's WADO skip Django's middleware
# when nothing is unusual (dicomweb/fastpath.py); every other request, and every refusal, is
# Django's. MRITRUS_DICOM_FASTPATH=0 turns it off (to compare, or to rule it out).
application: Any
if os.environ.get("MRITRUS_DICOM_FASTPATH", "1").strip().lower() in ("0", "false", "no", "off"):
    application = django_application
else:
    from dicomweb.fastpath import FastPath

    application = FastPath(django_application)
