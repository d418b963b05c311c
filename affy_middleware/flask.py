"""The Flask extension: ``Affy(app)`` or ``affy.init_app(app)``.

::

    from flask import Flask
    from affy_middleware.flask import Affy

    app = Flask(__name__)
    app.config["AFFY_CLIENT_ID"] = 42        # or the AFFY_CLIENT_ID environment variable
    affy = Affy(app)

Every option is read from ``app.config["AFFY_*"]``, falling back to the environment, and
keyword arguments to ``Affy(...)`` win over both. This module also teaches
``@track_registration``/``@track_payment`` to read a Flask request's form or JSON fields; it
is imported for you the first time they are needed in a process that runs Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, has_request_context, request

from . import delivery
from ._resolution import resolve
from ._settings import ENV_VARS, Settings
from ._settings_sources import read_option
from .attribution.decide import ConsentHook
from .attribution.visit import Visit
from .conversions import register_field_source
from .middleware.wsgi import AffyMiddleware

__all__ = ["Affy", "FLUSH_ON_TEARDOWN"]

#: ``app.config`` key (and environment variable) of ``Settings.flush_on_teardown``: flush
#: queued events at the end of every request (serverless runtimes freeze the process once
#: the response is out). Off by default: it delays responses.
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
        self.options = options
        if flush_on_teardown is not None:
            self.options["flush_on_teardown"] = flush_on_teardown
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
        config = app.config if self.base_settings is None else None
        settings = resolve(self.base_settings, self.options, framework_config=config)
        app.wsgi_app = AffyMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, settings=settings, consent=self.consent
        )
        app.extensions["affy"] = self
        self.settings = settings
        if self._should_flush(app, settings):
            timeout = settings.flush_timeout

            def flush_events(exc: BaseException | None) -> None:
                delivery.backend_for(settings).flush(timeout)

            app.teardown_request(flush_events)

    def _should_flush(self, app: Flask, settings: Settings) -> bool:
        if settings.flush_on_teardown is not None:
            return settings.flush_on_teardown
        if self.base_settings is not None:
            # Given settings replace app.config and the environment, but not for this key:
            # it says how this app's requests end, so an app's own config still applies.
            configured = read_option("flush_on_teardown", app.config)
            if configured is not None:
                return bool(configured)
        return delivery.backend_for(settings).blocks


def _flask_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    if not has_request_context():
        return None
    if request.is_json:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else None
    return request.form


register_field_source(_flask_fields)
