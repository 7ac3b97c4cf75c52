"""URL map: /echo/..., /stream/<bytes> and /fail/... (a 500); anything else is Django's own 404."""
from django.urls import path, re_path

from . import views

urlpatterns = [
    re_path(r"^echo(?:/.*)?$", views.echo),
    path("stream/<int:size>", views.stream),
    re_path(r"^fail(?:/.*)?$", views.fail),
]
