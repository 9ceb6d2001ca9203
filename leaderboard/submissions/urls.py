from django.urls import path

from . import organize, snapshot_views, views, views_compare

_phase = "challenges/<slug:slug>/phases/<slug:phase_slug>/"

urlpatterns = [
    path("challenges/<slug:slug>/", views.challenge_detail, name="challenge"),
    path("challenges/<slug:slug>/organize/", organize.organize, name="organize"),
    path(_phase + "leaderboard/<str:split>/", views.leaderboard, name="leaderboard"),
    path(_phase + "leaderboard/<str:split>/by-trait/", views_compare.leaderboard_by_trait,
         name="leaderboard_by_trait"),
    path(_phase + "compare/", views_compare.compare, name="compare"),
    path(_phase + "submit/", views.submit, name="submit"),
    # Board snapshots (snapshots.py): stable addresses to cite.
    path(_phase + "snapshots/", snapshot_views.board_snapshots, name="board_snapshots"),
    path(_phase + "snapshots/latest.json", snapshot_views.board_snapshot_latest, name="board_snapshot_latest"),
    path(_phase + "snapshots/<int:number>.json", snapshot_views.board_snapshot_json, name="board_snapshot_json"),
    path(_phase + "snapshots/<int:number>.csv", snapshot_views.board_snapshot_csv, name="board_snapshot_csv"),
    path(_phase + "submissions/", views.my_submissions, name="my_submissions"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission"),
    path("submissions/<int:submission_id>/status.json", views.submission_status, name="submission_status"),
    path("submissions/<int:submission_id>/cancel/", views.submission_cancel, name="submission_cancel"),
    path("submissions/<int:submission_id>/method/", views.submission_edit_method, name="submission_edit_method"),
    path(".well-known/egomask-receipt-key.json", views.receipt_keys, name="receipt_keys"),
    path("submissions/<int:submission_id>/public/", views.submission_set_public, name="submission_set_public"),
]
