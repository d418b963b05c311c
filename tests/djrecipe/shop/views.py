from django.db import transaction
from django.http import HttpRequest, HttpResponse

from affy_middleware import track_registration

from .models import Customer


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("welcome")


@track_registration
def signup(request: HttpRequest) -> HttpResponse:
    Customer.objects.create(email=request.POST["email"])
    if request.POST.get("coupon") == "expired":
        # The answer is a 200 but the customer is not kept (ATOMIC_REQUESTS rolls back):
        # the registration is not reported either.
        transaction.set_rollback(True)
        return HttpResponse("that coupon has expired, nothing was saved")
    return HttpResponse("welcome aboard", status=201)
