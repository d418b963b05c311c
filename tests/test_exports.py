"""The public names are the package's whole surface: each change shows here and in
docs/changelog.md."""

from __future__ import annotations

import importlib
import inspect

import affy_middleware

EXPECTED = {
    "AffyMiddleware",
    "AffyASGIMiddleware",
    "track_registration",
    "track_payment",
    "identify",
    "set_lead_value",
    "report_registration",
    "report_payment",
    "current_visit",
    "Visit",
    "Settings",
    "AffyClient",
    "AsyncAffyClient",
    "ClickResult",
    "RegistrationResult",
    "LeadResult",
    "PaymentResult",
    "StatusResult",
    "flush",
    "shutdown",
    "stats",
    "health", "Health",
    "AffyError",
    "AffyConfigError",
    "AffyAPIError",
    "AffyAuthError",
    "AffyValidationError",
    "AffyNotFoundError",
    "AffyRateLimitError",
    "AffyServerError",
    "AffyNetworkError",
    "AffyTimeoutError",
}


def test_public_names() -> None:
    assert set(affy_middleware.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(affy_middleware, name) is not None


def test_private_modules_declare_all() -> None:
    for name in EXPECTED:
        obj = getattr(affy_middleware, name)
        module = importlib.import_module(obj.__module__)
        assert name in module.__all__, f"{module.__name__}.__all__ lacks {name}"


def test_public_names_are_documented() -> None:
    for name in EXPECTED:
        assert inspect.getdoc(getattr(affy_middleware, name)), f"{name} has no docstring"


def test_call_signatures_match_the_contract() -> None:
    def params(fn: object) -> list[tuple[str, str]]:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
        return [(p.name, p.kind.name) for p in sig.parameters.values()]

    kw = "KEYWORD_ONLY"
    assert params(affy_middleware.identify) == [("email", kw), ("customer_id", kw), ("name", kw)]
    assert params(affy_middleware.report_registration) == [
        ("email", kw),
        ("customer_id", kw),
        ("name", kw),
        ("click_id", kw),
        ("session_id", kw),
    ]
    assert params(affy_middleware.report_payment) == [
        ("value", "POSITIONAL_OR_KEYWORD"),
        ("email", kw),
        ("session_id", kw),
    ]
    assert [p[0] for p in params(affy_middleware.flush)] == ["timeout"]
    assert [p[0] for p in params(affy_middleware.shutdown)] == ["timeout"]
