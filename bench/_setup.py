"""Shared set-up of the registration benches: a throw-away var/ folder, migrated, with Django ready."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PROSTATEX_T2 = SHARED / "prostatex-0000-dicom" / "4.000000-t2tsetra-00702"


def django_fresh(prefix: str) -> Path:
    """Point settings at a new temporary var/ (SQLite + media), migrate, and return that folder."""
    var = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["MRITRUS_VAR_DIR"] = str(var)
    os.environ["MRITRUS_MEDIA_ROOT"] = str(var / "media")
    # Settings refuse to start without a key when DEBUG is off.
    import secrets

    (var / "secret_key").write_text(secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mritrus_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    (var / "staticfiles").mkdir(exist_ok=True)  # whitenoise warns on every request otherwise
    call_command("migrate", verbosity=0)
    return var


def prostatex_manifest(folder: Path) -> Path:
    """A one-case manifest with a copy of the real ProstateX T2 in a temporary folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "t2").exists():
        shutil.copytree(PROSTATEX_T2, folder / "t2")
    (folder / "manifest.csv").write_text("case_code,reference_pirads,mr_t2\nPX01,3,t2\n")
    return folder
