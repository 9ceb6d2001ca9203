from django.urls import path

from . import organize, views, views_compare

_phase = "challenges/<slug:slug>/phases/<slug:phase_slug>/"

urlpatterns = [
    path("challenges/<slug:slug>/", views.challenge_detail, name="challenge"),
    path("challenges/<slug:slug>/organize/", organize.organize, name="organize"),
    path(_phase + "leaderboard/<str:split>/", views.leaderboard, name="leaderboard"),
    path(_phase + "leaderboard/<str:split>/by-trait/", views_compare.leaderboard_by_trait,
         name="leaderboard_by_trait"),
    path(_phase + "compare/", views_compare.compare, name="compare"),
    path(_phase + "submit/", views.submit, name="submit"),
    path(_phase + "submissions/", views.my_submissions, name="my_submissions"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission"),
    path("submissions/<int:submission_id>/status.json", views.submission_status, name="submission_status"),
    path("submissions/<int:submission_id>/cancel/", views.submission_cancel, name="submission_cancel"),
    path("submissions/<int:submission_id>/method/", views.submission_edit_method, name="submission_edit_method"),
    path("submissions/<int:submission_id>/public/", views.submission_set_public, name="submission_set_public"),
]
