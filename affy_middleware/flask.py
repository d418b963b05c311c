"""The Flask extension: ``Affy(app)`` or ``affy.init_app(app)``.

::

    from flask import Flask
    from affy_middleware.flask import Affy

    app = Flask(__name__)
    app.config["AFFY_CLIENT_ID"] = 42        # or the AFFY_CLIENT_ID environment variable
    affy = Affy(app)

Every option is read from ``app.config["AFFY_*"]``, falling back to the environment, and
keyword arguments to ``Affy(...)`` win over both.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import _delivery
from ._errors import AffyConfigError
from ._settings import ENV_VARS, Settings
from .attribution.decide import ConsentHook
from .middleware.wsgi import AffyMiddleware

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Affy", "FLUSH_ON_TEARDOWN"]

#: ``app.config`` key: flush queued events at the end of every request (serverless runtimes
#: freeze the process once the response is out). Off by default: it delays responses.
FLUSH_ON_TEARDOWN = "AFFY_FLUSH_ON_TEARDOWN"


class Affy:
    """Installs :class:`AffyMiddleware` on ``app.wsgi_app`` and registers in
    ``app.extensions["affy"]``.

    ``settings`` (a :class:`Settings`) replaces ``app.config`` and the environment.
    ``consent`` is called with the WSGI environ before cookies are written.
    ``flush_on_teardown`` (or ``AFFY_FLUSH_ON_TEARDOWN``, or ``AFFY_DELIVERY=sync``) makes
    every request wait, bounded by ``AFFY_FLUSH_TIMEOUT``, until its events are delivered.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        settings: Settings | None = None,
        consent: ConsentHook | None = None,
        flush_on_teardown: bool | None = None,
        **options: Any,
    ) -> None:
        self.base_settings = settings
        self.consent = consent
        self.flush_on_teardown = flush_on_teardown
        self.options = options
        #: The settings of the app initialised last.
        self.settings: Settings | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if "affy" in app.extensions or isinstance(app.wsgi_app, AffyMiddleware):
            raise RuntimeError(
                "affy_middleware is already registered on this Flask app: call Affy(app) or "
                "affy.init_app(app) once, and don't also wrap app.wsgi_app in AffyMiddleware"
            )
        for key in ENV_VARS:
            app.config.setdefault(key, None)
        app.config.setdefault(FLUSH_ON_TEARDOWN, None)
        if self.base_settings is not None:
            settings = self.base_settings.replace(**self.options)
        else:
            settings = Settings.from_mapping(app.config, **self.options)
        app.wsgi_app = AffyMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, settings=settings, consent=self.consent
        )
        app.extensions["affy"] = self
        self.settings = settings
        if self._should_flush(app, settings):
            timeout = settings.flush_timeout

            def flush_events(exc: BaseException | None) -> None:
                _delivery.dispatcher_for(settings).flush(timeout)

            app.teardown_request(flush_events)

    def _should_flush(self, app: Flask, settings: Settings) -> bool:
        if self.flush_on_teardown is not None:
            return self.flush_on_teardown
        raw = app.config.get(FLUSH_ON_TEARDOWN)
        if raw is None:
            raw = os.environ.get(FLUSH_ON_TEARDOWN)
        if isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                raise AffyConfigError(f"{FLUSH_ON_TEARDOWN}={raw!r} is not a boolean")
            return lowered in ("1", "true", "yes", "on")
        if raw is not None:
            return bool(raw)
        return settings.delivery == "sync"
