from django.urls import path

from . import views

urlpatterns = [
    path("health/live/", views.liveness, name="health_live"),
    path("health/", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("challenges/<slug:slug>/status/", views.challenge_status, name="challenge_status"),
    path("challenges/<slug:slug>/status.json", views.challenge_status, {"as_json": True},
         name="challenge_status_json"),
]
