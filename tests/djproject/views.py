"""Views that write the signup in the database and say so to AFFY."""

from __future__ import annotations

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from affy_middleware import (
    current_visit,
    report_registration,
    set_lead_value,
    track_payment,
    track_registration,
)


def create_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS signup (email TEXT)")


def signups() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM signup ORDER BY rowid")
        return [row[0] for row in cursor.fetchall()]


def _insert(email: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO signup (email) VALUES (%s)", [email])


def index(request: HttpRequest) -> HttpResponse:
    visit = current_visit()
    response = HttpResponse(f"ref={visit.affiliate_reference if visit else '-'}")
    response.set_cookie("app_own", "kept")
    return response


@track_registration
def signup(request: HttpRequest) -> HttpResponse:
    _insert(request.POST["email"])
    return HttpResponse("created", status=201)


@track_registration
def signup_rolled_back(request: HttpRequest) -> HttpResponse:
    # A 200 whose transaction does not commit (ATOMIC_REQUESTS): the user does not exist.
    _insert(request.POST["email"])
    transaction.set_rollback(True)
    return HttpResponse("rolled back")


def signup_savepoints(request: HttpRequest) -> HttpResponse:
    """Two reports in savepoints of one block: the rolled-back one is not reported."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                _insert("gone@example.com")
                report_registration(email="gone@example.com")
                raise RuntimeError("the inner block fails")
        except RuntimeError:
            pass
        with transaction.atomic():
            _insert("kept@example.com")
            report_registration(email="kept@example.com")
        reported_before_commit = len(signups())
    return HttpResponse(str(reported_before_commit))


@track_payment
async def pay(request: HttpRequest) -> HttpResponse:
    set_lead_value("19.90")
    return HttpResponse("paid")


def visit(request: HttpRequest) -> JsonResponse:
    seen = current_visit()
    return JsonResponse(
        {
            "ref": seen.affiliate_reference if seen else None,
            "same": seen is getattr(request, "affy_visit", "missing"),
            "secure": request.is_secure(),
        }
    )


def visit_fields(request: HttpRequest) -> JsonResponse:
    """What the middleware decided, for comparing it with the WSGI middleware's."""
    seen = current_visit()
    fields = ("click_id", "session_id", "affiliate_reference", "landed", "reissued", "method")
    return JsonResponse({name: getattr(seen, name) for name in fields} if seen else {})
