from django.urls import path

from . import views

urlpatterns = [
    path("account/notifications/", views.notification_settings, name="notification_settings"),
    path("unsubscribe/<str:token>/", views.notification_unsubscribe, name="notification_unsubscribe"),
]
