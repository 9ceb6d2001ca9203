"""Routes of the API under /api/v1/ (each app's api.py holds the classes)."""

from django.urls import path

from .submissions.api import UploadPartApi

urlpatterns = [
    path("uploads/<uuid:upload_id>/parts/<int:part_number>/", UploadPartApi.as_view(), name="api-upload-part"),
]
