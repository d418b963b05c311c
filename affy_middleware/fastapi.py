"""FastAPI: the visit as a dependency.

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
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .attribution.visit import Visit
from .middleware.asgi import visit_of

__all__ = ["get_visit", "CurrentVisit"]


def get_visit(connection: HTTPConnection) -> Visit | None:
    """The request's visit, or None (no affiliate attribution, or no middleware).

    Use as ``Depends(get_visit)``, or through the :data:`CurrentVisit` annotation.
    """
    return visit_of(connection.scope)


#: ``visit: CurrentVisit`` in an endpoint's signature: the request's ``Visit`` or None.
CurrentVisit = Annotated[Visit | None, Depends(get_visit)]
