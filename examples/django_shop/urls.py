from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("pricing", views.pricing, name="pricing"),
    path("signup", views.signup, name="signup"),
    path("checkout", views.checkout, name="checkout"),
    path("thanks", views.thanks, name="thanks"),
    path("attribution.json", views.attribution, name="attribution"),
]
