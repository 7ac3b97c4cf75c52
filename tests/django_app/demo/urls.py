"""URL map: /echo/... and /stream/<bytes>; anything else is Django's own 404."""
from django.urls import path, re_path

from . import views

urlpatterns = [
    re_path(r"^echo(?:/.*)?$", views.echo),
    path("stream/<int:size>", views.stream),
]
