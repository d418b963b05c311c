"""Conversions: ``@track_registration``, ``@track_payment``, ``identify``, ``report_*``.

Where each part lives: the decorators in ``decorators``; ``identify``, ``set_lead_value``,
``report_*`` and the building of the events in ``reports``; the response-status rule in
``status``; the customer fields (``identify``, the ``customer=`` extractor, the form
fields a framework parsed) and the field-source registry in ``fields``; when a built event
goes to delivery (now, or on a database commit) in ``handover``. The AFFY bodies
themselves are built by the wire module (``affy_middleware._wire``).
"""

from .decorators import track_payment, track_registration
from .fields import register_field_source
from .handover import install_hand_over, remove_hand_over
from .reports import identify, report_payment, report_registration, set_lead_value
from .status import register_status_source, response_status

__all__ = [
    "track_registration",
    "track_payment",
    "identify",
    "set_lead_value",
    "report_registration",
    "report_payment",
    "response_status",
    "register_field_source",
    "register_status_source",
    "install_hand_over",
    "remove_hand_over",
]
