"""``affy status SESSION_ID``: which affiliate AFFY attributes a session to."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import AffyAPIError, AffyConfigError
from ..client import AffyClient, StatusResult
from .config import settings_from
from .output import EXIT_OK, config_failure, describe_api_error, print_json, report_failure

__all__ = ["run", "status_dict"]


def status_dict(result: StatusResult) -> dict[str, Any]:
    return {
        "sessionId": result.session_id,
        "hasAffiliate": result.has_affiliate,
        "affiliateReference": result.affiliate_reference,
        "clickId": result.click_id,
        "clickedAt": result.clicked_at,
    }


def run(args: argparse.Namespace) -> int:
    """Print the attribution of ``args.session_id`` (none is an answer, exit code 0)."""
    try:
        settings = settings_from(args)
    except AffyConfigError as exc:
        return report_failure(config_failure(exc), args.json)
    try:
        with AffyClient(settings) as client:
            result = client.status(args.session_id)
    except AffyAPIError as exc:
        return report_failure(describe_api_error(exc, settings), args.json)
    if args.json:
        print_json({"ok": True, **status_dict(result)}, sys.stdout)
        return EXIT_OK
    if result.has_affiliate:
        print(f"session {args.session_id}: referred by affiliate {result.affiliate_reference}")
        print(f"  click id:   {result.click_id}")
        print(f"  clicked at: {result.clicked_at}")
    else:
        print(f"session {args.session_id}: no affiliate (AFFY has no click for this session)")
    return EXIT_OK
