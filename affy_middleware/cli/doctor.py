"""``affy doctor``: check the settings, reach the API, verify the key, say what to fix."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from dataclasses import dataclass, field

from .. import __version__
from .._errors import AffyAPIError, AffyAuthError, AffyConfigError
from .._settings import DEFAULT_API_URL, Settings
from ..client import AffyClient
from .config import is_local, settings_from, settings_summary
from .output import EXIT_FAILED, EXIT_OK, FIX_CLIENT_ID, describe_api_error, print_json

__all__ = ["run"]


@dataclass
class _Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str | None = None


@dataclass
class _Doctor:
    checks: list[_Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str, fix: str | None = None) -> None:
        self.checks.append(_Check(name, status, detail, fix))

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


def _diagnose(args: argparse.Namespace) -> tuple[_Doctor, Settings | None]:
    doc = _Doctor()
    try:
        settings = settings_from(args)
    except AffyConfigError as exc:
        doc.add("settings", "fail", str(exc), "correct or unset the variable named above")
        return doc, None
    version = sys.version.split()[0]
    doc.add("version", "ok", f"affy_middleware {__version__} on Python {version}")
    doc.add("settings", "ok", "every AFFY_* variable parses")
    if settings.client_id is None:
        doc.add("client id", "fail", "AFFY_CLIENT_ID is not set: tracking is off", FIX_CLIENT_ID)
    else:
        doc.add("client id", "ok", str(settings.client_id))
    if not settings.enabled:
        doc.add("enabled", "warn", "AFFY_ENABLED is false: tracking is off", "unset AFFY_ENABLED")
    if settings.delivery == "off":
        doc.add(
            "delivery",
            "warn",
            "AFFY_DELIVERY=off: events are not sent",
            "unset AFFY_DELIVERY (thread) or set it to sync for scripts and serverless",
        )
    else:
        doc.add("delivery", "ok", settings.delivery)
    if settings.spool_path is not None:
        directory = os.path.dirname(os.path.abspath(settings.spool_path))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
            doc.add(
                "outbox",
                "fail",
                f"the SQLite outbox's directory {directory} does not exist or is not writable",
                "create the directory for the outbox file, writable by the app's user",
            )
        else:
            doc.add("outbox", "ok", settings.spool_path)
    where = "local sandbox" if is_local(settings) else "remote"
    doc.add("api url", "ok", f"{settings.api_url} ({where})")
    _reach(doc, settings)
    return doc, settings


def _reach(doc: _Doctor, settings: Settings) -> None:
    """Reach the API with a status call for a made-up session: it proves the URL is an AFFY
    API and, with a key, that the key is accepted. Records nothing at AFFY."""
    probe = "affy-doctor-" + secrets.token_hex(8)
    started = time.monotonic()
    try:
        with AffyClient(settings) as client:
            result = client.status(probe)
    except AffyAuthError as exc:
        doc.add("reach", "ok", f"{settings.api_url} answers (HTTP {exc.status_code})")
        failure = describe_api_error(exc, settings)
        doc.add("api key", "fail", failure.problem, failure.fix)
        return
    except AffyAPIError as exc:
        failure = describe_api_error(exc, settings)
        doc.add("reach", "fail", failure.problem, failure.fix)
        return
    elapsed = (time.monotonic() - started) * 1000
    if result.session_id != probe:
        doc.add(
            "reach",
            "fail",
            f"{settings.api_url} answered, but not like the AFFY Tracking API (no sessionId)",
            f"set AFFY_API_URL to the API's base URL, e.g. {DEFAULT_API_URL}",
        )
        return
    doc.add("reach", "ok", f"{settings.api_url} answered the status call in {elapsed:.0f} ms")
    if settings.api_key is None:
        doc.add(
            "api key",
            "warn",
            "AFFY_API_KEY is not set: tracking calls work, the status call may not",
            "export AFFY_API_KEY=<key> from your AFFY dashboard (or pass --api-key)",
        )
    else:
        doc.add("api key", "ok", "accepted")


def run(args: argparse.Namespace) -> int:
    """Run the checks; exit code 1 if any failed."""
    doc, settings = _diagnose(args)
    if args.json:
        print_json(
            {
                "ok": doc.ok,
                "checks": [vars(c) for c in doc.checks],
                "settings": None if settings is None else settings_summary(settings),
            },
            sys.stdout,
        )
        return EXIT_OK if doc.ok else EXIT_FAILED
    labels = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    for check in doc.checks:
        print(f"[{labels[check.status]}] {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            print(f"       fix: {check.fix}")
    failed = [c for c in doc.checks if c.status == "fail"]
    if failed:
        print(f"affy doctor: {len(failed)} problem(s) to fix", file=sys.stderr)
        return EXIT_FAILED
    print("affy doctor: all checks passed")
    return EXIT_OK
