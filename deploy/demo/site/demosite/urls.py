"""/ (an HTML page), /echo/ (plain text), /slow/?ms=N (a slow page for load tests)."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("echo/", views.echo),
    path("slow/", views.slow),
]
