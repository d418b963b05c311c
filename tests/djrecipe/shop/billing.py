from decimal import Decimal

from affy_middleware import report_payment


def record_renewal(session_id: str, amount: Decimal) -> bool:
    """A subscription renewal, outside any request (a webhook, a job, a management command):
    the session id was stored at signup; the AFFY settings are settings.py's."""
    return report_payment(amount, session_id=session_id)
