from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/api-token/", views.api_token, name="api_token"),
    path("account/api-token/create/", views.api_token_create, name="api_token_create"),
    path("account/api-token/rotate/", views.api_token_rotate, name="api_token_rotate"),
    path("account/api-token/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("teams/", views.my_teams, name="my_teams"),
    path("teams/join/", views.team_join_code, name="team_join_code"),
    path("teams/join/<str:code>/", views.team_join, name="team_join"),
    path("teams/<int:team_id>/", views.team_detail, name="team"),
    path("teams/<int:team_id>/leave/", views.team_leave, name="team_leave"),
    path("teams/<int:team_id>/invite-code/", views.team_new_invite_code, name="team_new_invite_code"),
    path("challenges/<slug:slug>/teams/", views.team_create, name="team_create"),
]
