"""Calling AFFY within bounds: one deadline for the whole call, at most ``MAX_ANSWER``
bytes read.

httpx's timeout bounds each network operation, not the call: a server that trickles one
byte per second keeps a read alive for ever, and one that answers its headers late and
then stalls mid-body holds the call for a whole extra timeout. :class:`Remaining` makes
each operation's timeout what is left of the call's time instead. And ``response.read()``
takes whatever is sent: a broken proxy's 300 MB "success" would sit in memory. So the
answer is streamed, ``Content-Length`` is checked first, and the size and the deadline
between chunks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from .._errors import AffyNetworkError, AffyTimeoutError

__all__ = ["MAX_ANSWER", "AnswerTooLarge", "BodyReader", "IDENTITY"]

#: Largest answer read (AFFY's are under 1 KiB); more is an error, retried.
MAX_ANSWER = 64 * 1024
#: Asked of AFFY so that the size read is the size sent (no compressed bombs).
IDENTITY = {"Accept-Encoding": "identity"}


class AnswerTooLarge(AffyNetworkError):
    """The answer is larger than ``MAX_ANSWER``: a broken proxy, not AFFY. Retried."""


_STEPS = ("connect", "read", "write", "pool")


class Remaining(dict[str, "float | None"]):
    """A request's ``timeout`` extension whose every step (connect, write, each read, the
    wait for a pooled connection) may take only what is left until ``deadline``
    (monotonic). The transport looks a step's timeout up right before the step::

        request.extensions["timeout"] = Remaining(time.monotonic() + 10)
    """

    def __init__(self, deadline: float) -> None:
        super().__init__({step: self._left(deadline) for step in _STEPS})
        self.deadline = deadline

    @staticmethod
    def _left(deadline: float) -> float:
        return max(0.001, deadline - time.monotonic())  # 0 would mean "no wait at all"

    def __getitem__(self, step: str) -> float | None:
        if step in _STEPS:
            return self._left(self.deadline)
        return super().__getitem__(step)

    def get(self, step: str, default: object = None) -> Any:
        if step in _STEPS:
            return self._left(self.deadline)
        return super().get(step, default)


class BodyReader:
    """Collects one response's body, bounded in size and by ``deadline`` (monotonic)."""

    def __init__(self, response: httpx.Response, deadline: float, where: str) -> None:
        self._response = response
        self._deadline = deadline
        self._where = where
        self._parts: list[bytes] = []
        self._size = 0
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_ANSWER:
            raise self._too_large(int(declared))

    def _too_large(self, size: int) -> AnswerTooLarge:
        return AnswerTooLarge(
            f"the answer from {self._where} is {size} bytes or more (at most {MAX_ANSWER} "
            "read): a proxy in front of AFFY is misbehaving"
        )

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_ANSWER:
            raise self._too_large(self._size)
        if time.monotonic() > self._deadline:
            raise AffyTimeoutError(f"AFFY at {self._where} did not finish its answer in time")
        self._parts.append(chunk)

    def response(self) -> httpx.Response:
        """A plain response with the body read (for the error mapping and the parsing)."""
        original = self._response
        headers = [
            (name, value)
            for name, value in original.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            original.status_code,
            headers=headers,
            content=b"".join(self._parts),
            request=original.request,
            extensions={"reason_phrase": original.reason_phrase.encode("ascii", "replace")},
        )

    def read(self, chunks: Iterator[bytes]) -> httpx.Response:
        for chunk in chunks:
            self.add(chunk)
        return self.response()

    async def aread(self, chunks: AsyncIterator[bytes]) -> httpx.Response:
        async for chunk in chunks:
            self.add(chunk)
        return self.response()
