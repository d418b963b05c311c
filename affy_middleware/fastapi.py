"""FastAPI and Starlette: the visit as a dependency, and the form fields the decorators read.

::

    from fastapi import FastAPI
    from affy_middleware import AffyASGIMiddleware, Settings, track_registration
    from affy_middleware.fastapi import CurrentVisit

    app = FastAPI()
    app.add_middleware(AffyASGIMiddleware, settings=Settings.from_env())

    @app.get("/")
    async def index(visit: CurrentVisit) -> dict[str, str | None]:
        return {"ref": visit.affiliate_reference if visit else None}

``current_visit()`` works too, in the endpoint, its dependencies and its background tasks;
the dependency just says in the signature that the endpoint looks at the visit.

Settings come from the middleware (``settings=``, else the environment, then keyword
options). Importing this module also teaches ``@track_registration``/``@track_payment``
where a Starlette or FastAPI endpoint's form fields are; it is imported for you the first
time they are needed in a process that runs Starlette, and works without FastAPI installed
(``CurrentVisit`` and ``get_visit`` then need FastAPI's ``Depends`` and are left out).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Annotated, Any

from .attribution.visit import Visit
from .conversions import register_field_source, register_status_source
from .middleware.asgi import visit_of

__all__ = ["get_visit", "CurrentVisit"]


def _starlette_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    scope = visit.native if visit is not None else None
    if not isinstance(scope, MutableMapping) or scope.get("type") != "http":
        return None
    candidates = (*args[:2], *kwargs.values())
    for candidate in candidates:
        if hasattr(candidate, "META") and hasattr(candidate, "POST"):
            return None  # a Django request: Django's own source reads it
    for candidate in candidates:
        # A Starlette request whose body the view already parsed (never read here).
        if getattr(candidate, "scope", None) is scope or hasattr(candidate, "_form"):
            form = getattr(candidate, "_form", None)
            if isinstance(form, Mapping) and form:
                return form
            data = getattr(candidate, "_json", None)
            if isinstance(data, Mapping) and data:
                return data
    # FastAPI hands form fields and body models to the endpoint as keyword arguments.
    fields: dict[str, Any] = {}
    for name, value in kwargs.items():
        if isinstance(value, str):
            fields.setdefault(name, value)
            continue
        dump = getattr(value, "model_dump", None)
        data = dump() if callable(dump) else value
        if isinstance(data, Mapping):
            for key, item in data.items():
                if isinstance(key, str) and isinstance(item, (str, int)):
                    fields.setdefault(key, item)
    return fields or None


register_field_source(_starlette_fields)


def _injected_status(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
    # FastAPI hands an endpoint that declares ``response: Response`` a temporary response
    # whose status it copies onto the real one when the endpoint returns a plain value.
    for value in kwargs.values():
        if isinstance(value, _Response):
            code = getattr(value, "status_code", None)  # None until the endpoint sets one
            if isinstance(code, int) and not isinstance(code, bool):
                return code
    return None


try:
    from starlette.responses import Response as _Response
except ImportError:  # pragma: no cover - this module is imported because starlette was
    pass
else:
    register_status_source(_injected_status)

try:
    from fastapi import Depends
    from starlette.requests import HTTPConnection
except ImportError:  # Starlette without FastAPI: only the field source above applies
    pass
else:

    def get_visit(connection: HTTPConnection) -> Visit | None:
        """The request's visit, or None (no affiliate attribution, or no middleware).

        Use as ``Depends(get_visit)``, or through the :data:`CurrentVisit` annotation.
        """
        return visit_of(connection.scope)

    #: ``visit: CurrentVisit`` in an endpoint's signature: the request's ``Visit`` or None.
    CurrentVisit = Annotated[Visit | None, Depends(get_visit)]
