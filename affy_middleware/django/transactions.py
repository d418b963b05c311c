"""Conversions inside a database transaction are handed to delivery on commit.

Installed as the conversions' hand-over when ``affy_middleware.django`` is imported. When
the thread (or async context) is inside an atomic block (``ATOMIC_REQUESTS``, a view's
``transaction.atomic()``), ``@track_registration``, ``@track_payment`` and ``report_*`` tie
the event to the transaction: a rollback, of the block or of the savepoint the event was
made in, reports nothing, and a commit reports once. When the outbox is that database,
the event's row is written in the transaction itself (``outbox.py``: no window between
the commit and the row); otherwise the event goes to delivery on
``transaction.on_commit`` (a crash right after the commit loses it). Outside a block, the
event goes to delivery at once, as in any other framework.

Which database: the default one when it is in an atomic block, else the first open
connection that is (the usual project has one database). Clicks are never deferred.
"""

from __future__ import annotations

import functools

from .._logging import log_failure
from ..conversions.handover import Conversion, Send
from .outbox import write_in_transaction

__all__ = ["on_commit_hand_over"]


def on_commit_hand_over(conversion: Conversion) -> bool | None:
    """Tie the conversion to the current atomic block's transaction (its outbox row
    written in it, else its send deferred to the commit); None outside one."""
    from django.conf import settings

    if not settings.configured:
        return None
    from django.db import DEFAULT_DB_ALIAS, connections, transaction

    # Only connections this thread has opened: one that was never opened is in no block.
    in_block = [c.alias for c in connections.all(initialized_only=True) if c.in_atomic_block]
    if not in_block:
        return None
    alias = DEFAULT_DB_ALIAS if DEFAULT_DB_ALIAS in in_block else in_block[0]
    if write_in_transaction(conversion, alias):
        return True
    transaction.on_commit(functools.partial(_send_after_commit, conversion), using=alias)
    return True


def _send_after_commit(send: Send) -> None:
    # Runs in the app's commit path: nothing may raise into it.
    try:
        send()
    except Exception:
        log_failure("submitting a conversion after the commit")
