"""The WSGI and ASGI middlewares: protocol plumbing over one :class:`~.pipeline.Pipeline`.

``wsgi`` (:class:`AffyMiddleware`) and ``asgi`` (:class:`AffyASGIMiddleware`) read the
environ or scope, ask ``attribution`` for a decision through a request view, and apply it
with ``pipeline``: the visit exposed, the click submitted, the cookies appended.
"""

from .asgi import AffyASGIMiddleware
from .pipeline import VISIT_KEY, Pipeline
from .wsgi import AffyMiddleware

__all__ = ["AffyMiddleware", "AffyASGIMiddleware", "Pipeline", "VISIT_KEY"]
