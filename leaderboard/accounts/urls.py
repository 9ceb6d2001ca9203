from allauth.account import urls as allauth_urls
from allauth.account import views as allauth_views
from django.urls import include, path

from . import views

# allauth's pages live under /account/, except the three everyone types or bookmarks, which keep the
# addresses they had before allauth (/login/, /signup/, /logout/; the tests and the docs use them).
_AT_THE_TOP = {"account_login", "account_signup", "account_logout"}

urlpatterns = [
    path("signup/", views.signup_view, name="account_signup"),
    path("login/", views.login_view, name="account_login"),
    path("logout/", allauth_views.logout, name="account_logout"),
    path("account/", include([p for p in allauth_urls.urlpatterns if p.name not in _AT_THE_TOP])),
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
