"""``affy send-test``: a click and a registration (and a payment) through the library's real
delivery pipeline, then the attribution read back from AFFY."""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import sys
from typing import Any

from .. import delivery, flush, report_payment, report_registration, shutdown, stats
from .._defaults import configure_default
from .._errors import AffyAPIError, AffyConfigError
from .._settings import Settings
from .._wire import Event, click_body
from ..client import AffyClient, StatusResult
from .config import settings_from
from .output import (
    EXIT_OK,
    FIX_CLIENT_ID,
    Failure,
    config_failure,
    describe_api_error,
    print_json,
    report_failure,
)
from .status import status_dict

__all__ = ["run"]


class _Collect(logging.Handler):
    """Keeps the library's warnings (why AFFY refused an event) to report them in one place."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a malformed log call must not break us
            self.messages.append(record.getMessage())


def _new_id() -> str:
    return secrets.token_urlsafe(18)


def run(args: argparse.Namespace) -> int:
    """Send the test events, wait for their delivery, read the attribution back."""
    try:
        settings = settings_from(args)
    except AffyConfigError as exc:
        return report_failure(config_failure(exc), args.json)
    client_id = settings.client_id
    if client_id is None:
        return report_failure(
            Failure("AFFY_CLIENT_ID is not set: nothing can be sent", FIX_CLIENT_ID), args.json
        )
    # The pipeline a web app uses, switched on even where this environment switches it off,
    # and without the app's spool (its leftover rows are not ours to send).
    delivery = "sync" if settings.delivery == "sync" else "thread"
    settings = settings.replace(enabled=True, delivery=delivery, spool_path=None, outbox_url=None)
    test = _SendTest(args, settings, client_id)
    if test.human:
        print(f"affy send-test: {settings.api_url} (client id {client_id})")
    try:
        test.reach()
        test.deliver()
        test.check_attribution()
    except Failure as failure:
        return report_failure(failure, args.json, test.extra)
    if args.json:
        print_json({"ok": True, **test.extra}, sys.stdout)
    else:
        print("affy send-test: ok")
    return EXIT_OK


class _SendTest:
    """One run: a new test session, and the steps done so far (``extra`` of the report)."""

    def __init__(self, args: argparse.Namespace, settings: Settings, client_id: int) -> None:
        self.args = args
        self.settings = settings
        self.client_id = client_id
        self.human = not args.json
        self.session_id = "affy-send-test-" + secrets.token_hex(8)
        self.click_id = _new_id()
        self.steps: list[dict[str, Any]] = []
        #: False when ``--wait 0`` left the events queued (delivered at exit).
        self.waited = True
        self.extra: dict[str, Any] = {"session_id": self.session_id, "steps": self.steps}

    def step(self, name: str, detail: str) -> None:
        self.steps.append({"step": name, "detail": detail})
        if self.human:
            print(f"  {name:<12} {detail}", flush=True)

    def status(self) -> StatusResult:
        try:
            with AffyClient(self.settings) as client:
                return client.status(self.session_id)
        except AffyAPIError as exc:
            raise describe_api_error(exc, self.settings) from None

    def reach(self) -> None:
        """Reach AFFY first, so an unreachable API or a wrong key is one clear line, fast."""
        self.status()
        key = " and accepts the key" if self.settings.api_key else ""
        self.step("reach", "AFFY answers" + key)

    def deliver(self) -> None:
        """Queue the events as an app would, flush, and count what the pipeline did."""
        collect = _Collect()
        library_logger = logging.getLogger("affy_middleware")
        library_logger.addHandler(collect)
        try:
            before = dict(stats())
            accepted = self._queue()
            if not all(accepted) and not delivery.backend_for(self.settings).blocks:
                raise Failure("the delivery queue did not accept the test events", None)
            delivered = flush(self.args.wait)
            after = dict(stats())
        finally:
            library_logger.removeHandler(collect)
        counts = {k: after.get(k, 0) - before.get(k, 0) for k in ("sent", "retried", "failed")}
        counts["dropped"] = after.get("dropped", 0) - before.get("dropped", 0)
        counts["queued"] = after.get("queued", 0) + after.get("in_flight", 0)
        counts["flushed"] = int(delivered)
        self.extra["delivery"] = counts
        expected = len(accepted)
        if self.args.wait == 0 and not counts["dropped"]:
            # Asked not to wait: what is still queued goes out in the library's bounded
            # flush at exit (AFFY_FLUSH_TIMEOUT), as in an app; attribution is not checked.
            self.waited = False
            self.step(
                "queued",
                f"{expected} events, {counts['sent']} sent so far; the rest at exit (--wait 0)",
            )
            return
        if counts["dropped"] or counts["sent"] < expected:
            shutdown(0.0)  # nothing may keep the process waiting at exit
            reasons = [m.removeprefix("affy_middleware: ") for m in collect.messages]
            if counts["dropped"]:
                why = "; ".join(dict.fromkeys(reasons)) or "dropped"
                fix = (
                    "AFFY refused them (its reason is above): check that AFFY_CLIENT_ID is the "
                    "client id of the account the API key belongs to"
                )
            else:
                why = f"not delivered within --wait {self.args.wait:g}s"
                fix = "run `affy doctor`; raise --wait if AFFY is slow"
            raise Failure(f"{counts['sent']} of {expected} test events delivered ({why})", fix)
        self.step("delivered", f"{counts['sent']} events sent, {counts['retried']} retried")

    def _queue(self) -> list[bool]:
        args, session_id, settings = self.args, self.session_id, self.settings
        # A click is the middleware's to report (no public call makes one): it goes straight
        # to the backend the middleware would use; the conversions go the public way, with
        # these settings as the default for work outside a request.
        backend = delivery.backend_for(settings)
        configure_default(settings)
        click = Event(
            kind="click",
            body=click_body(
                self.client_id,
                affiliate_reference=args.affiliate,
                click_id=self.click_id,
                session_id=session_id,
                clicked_url=f"https://shop.example/?ref={args.affiliate}",
                user_agent="affy send-test",
                source="affy-send-test",
            ),
            order_key=session_id,
        )
        accepted = [backend.submit(click)]
        self.step("click", f"queued (affiliate {args.affiliate}, session {session_id})")
        accepted.append(
            report_registration(
                email=args.email,
                name="AFFY send-test",
                customer_id="send-test",
                click_id=self.click_id,
                session_id=session_id,
            )
        )
        self.step("registration", f"queued (email {args.email})")
        if args.amount is not None:
            accepted.append(report_payment(args.amount, email=args.email, session_id=session_id))
            self.step("payment", f"queued (amount {args.amount})")
        return accepted

    def check_attribution(self) -> None:
        """Read the attribution back, as an app would ask AFFY about a visitor."""
        if not self.waited:
            self.step("attribution", "not checked (--wait 0)")
            return
        result = self.status()
        self.extra["status"] = status_dict(result)
        affiliate = self.args.affiliate
        if not result.has_affiliate or result.affiliate_reference != affiliate:
            raise Failure(
                f"AFFY does not attribute the test session to {affiliate!r} "
                f"(status says affiliate {result.affiliate_reference!r})",
                "the click was delivered but not linked: check AFFY_CLIENT_ID is the "
                "account the API key belongs to",
            )
        self.step(
            "attribution",
            f"AFFY attributes session {self.session_id} to {result.affiliate_reference}",
        )
