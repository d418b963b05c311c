"""The middlewares' returning-visitor fast path decides what ``Attribution.decide`` decides.

The WSGI and ASGI middlewares skip requests that carry nothing of ours and ask
``Attribution.returning`` (the cookies alone, no request view) when the query cannot land;
only a possible landing or a click cookie to re-issue goes through a request view. For
generated requests (queries with and without affiliate parameters, cookie headers with
ours valid, forged, repeated, split over several headers, companions that match or not,
bots, prefetches, methods, schemes, consent, tracking off) the visit, the cookies set and
the click reported must be those of ``decide`` over a view that reads the whole request
itself. Ids and the clock are fixed, so that a landing's decision is comparable too.
"""

from __future__ import annotations

from _fast_path import (
    asgi_scope,
    assert_same,
    full_decision,
    purposes,
    queries,
    request_methods,
    schemes,
    settings_and_cookies,
    through_asgi,
    through_wsgi,
    user_agents,
    wsgi_environ,
)
from _strategies import EXAMPLES
from hypothesis import given

from affy_middleware import Settings
from affy_middleware.attribution import ASGIRequest, WSGIRequest


@EXAMPLES
@given(
    case=settings_and_cookies(),
    method=request_methods,
    query=queries,
    ua=user_agents,
    purpose=purposes,
    scheme=schemes,
)
def test_wsgi_middleware_decides_as_decide_does(
    case: tuple[Settings, list[str]],
    method: str | None,
    query: str,
    ua: str | None,
    purpose: str | None,
    scheme: str,
) -> None:
    settings, cookies = case
    environ = wsgi_environ(method, query, cookies, ua, purpose, scheme)
    full = full_decision(settings, WSGIRequest(dict(environ)))
    assert_same(through_wsgi(settings, environ), full)


@EXAMPLES
@given(
    case=settings_and_cookies(),
    method=request_methods,
    query=queries,
    ua=user_agents,
    purpose=purposes,
    scheme=schemes,
)
def test_asgi_middleware_decides_as_decide_does(
    case: tuple[Settings, list[str]],
    method: str | None,
    query: str,
    ua: str | None,
    purpose: str | None,
    scheme: str,
) -> None:
    settings, cookies = case
    scope = asgi_scope(method, query, cookies, ua, purpose, scheme)
    full = full_decision(settings, ASGIRequest(dict(scope)))
    assert_same(through_asgi(settings, scope), full)
