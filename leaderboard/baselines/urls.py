from django.urls import path

from . import views

urlpatterns = [
    path("baselines/runs/<int:run_id>/", views.run_detail, name="baseline_run"),
]
