"""The sandbox: a local AFFY Tracking API for tests, benchmarks and the demo.

Run it with ``python -m affy_middleware.sandbox --port 8765`` (or ``affy sandbox``), or
in-process::

    from affy_middleware.sandbox import SandboxServer

    with SandboxServer(port=0, api_key="test-key") as sb:
        print(sb.url, sb.events())
"""

from ._app import SandboxApp
from ._faults import Faults
from ._server import SandboxServer
from ._store import Store

__all__ = ["SandboxServer", "SandboxApp", "Store", "Faults"]
