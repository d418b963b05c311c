"""The visit and ``current_visit()``: what the request's code sees."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from affy_middleware.attribution import Visit, current_visit, reset_current_visit, set_current_visit


def test_current_visit_in_threads_and_tasks() -> None:
    visit = Visit(click_id="c" * 10)
    token = set_current_visit(visit)
    try:
        assert current_visit() is visit

        async def in_task() -> Visit | None:
            return await asyncio.create_task(asyncio.sleep(0, current_visit()))

        assert asyncio.run(in_task()) is visit
        seen: list[Visit | None] = []
        ctx = contextvars.copy_context()
        t = threading.Thread(target=lambda: seen.append(ctx.run(current_visit)))
        t.start()
        t.join(10)
        assert seen == [visit]
    finally:
        reset_current_visit(token)
    assert current_visit() is None


def test_visit_referred() -> None:
    assert not Visit().referred
    assert Visit(session_id="s" * 10).referred
