from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("signup", views.signup),
    path("signup-rolled-back", views.signup_rolled_back),
    path("signup-savepoints", views.signup_savepoints),
    path("pay", views.pay),
    path("visit.json", views.visit),
    path("visit-fields.json", views.visit_fields),
]
