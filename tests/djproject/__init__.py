"""A tiny Django project for the tests of ``affy_middleware.django``: the middleware class
and the app in ``settings.py``, a SQLite database, views that write in a transaction.

Used in-process (``tests/integrations/test_django_*.py`` configure Django from
``settings.py``) and in subprocesses (``DJANGO_SETTINGS_MODULE=djproject.settings`` with
``tests`` on the path): management commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The folder to put on ``PYTHONPATH`` for ``djproject`` to import in a subprocess.
TESTS = Path(__file__).resolve().parents[1]
SETTINGS_MODULE = "djproject.settings"


def setup_in_process() -> None:
    """Configure Django from ``settings.py`` unless this process configured it already
    (settings are process-wide: the first configuration stays; every test module that
    needs Django's database or this app calls this when it is imported, before any test
    configures Django its own way), then ``django.setup()``."""
    import django
    from django.conf import settings

    from . import settings as project

    if not settings.configured:
        # AFFY_* left out: process-wide, they would leak into other modules' tests
        # (which expect the environment's); tests set them with override_settings.
        names = [n for n in dir(project) if n.isupper() and not n.startswith("AFFY_")]
        settings.configure(**{name: getattr(project, name) for name in names})
    django.setup()
    if "djproject" not in settings.INSTALLED_APPS:  # pragma: no cover - a wrong test order
        raise RuntimeError("Django was configured before djproject: import it first")


def subprocess_env(**extra: str) -> dict[str, str]:
    """An environment for ``python -m django ...`` on this project: no AFFY_* variables
    (the settings come from settings.py), ``djproject`` importable."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AFFY_", "DJANGO_", "DJPROJECT_"))
    }
    root = str(TESTS.parent)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), root])
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    env.update(extra)
    return env


PYTHON = sys.executable
