from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("challenges/", views.challenge_list, name="challenge_list"),
    path("challenges/<slug:slug>/format/", views.challenge_format, name="challenge_format"),
    path("challenges/<slug:slug>/terms/", views.challenge_terms, name="challenge_terms"),
    path("challenges/<slug:slug>/phases/<slug:phase_slug>/example.zip", views.phase_example, name="phase_example"),
]
