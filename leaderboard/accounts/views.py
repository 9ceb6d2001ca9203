"""Team and API-token pages, and the two allauth views we adjust (login, sign-up); the rest of the account
pages (logout, e-mail addresses, password change and reset) are allauth's own (see urls.py)."""

from __future__ import annotations

from allauth.account import views as allauth_views
from allauth.core import ratelimit
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from leaderboard.errors import ApplicationError
from leaderboard.webkit import challenge_or_404, render_error, safe_next

from . import selectors, services
from .forms import TeamCreateForm, TeamJoinForm
from .models import Team


class LoginView(allauth_views.LoginView):
    """allauth's login (user name or e-mail address), answering 429 once the failed-login limit is reached,
    so that a client (or a guessing script) is told plainly that it must wait."""

    def form_invalid(self, form: forms.Form) -> HttpResponse:
        response = super().form_invalid(form)
        codes = {error.code for error in form.errors.as_data().get(NON_FIELD_ERRORS, [])}
        if "too_many_login_attempts" in codes:
            response.status_code = 429
        return response


class SignupView(allauth_views.SignupView):
    """allauth's sign-up; a refused form answers 400, so that scripts and tests can tell it from a page view."""

    def form_invalid(self, form: forms.Form) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        return response


login_view = LoginView.as_view()
signup_view = SignupView.as_view()


def _join_rate_limited(request: HttpRequest) -> HttpResponse | None:
    """429 (templates/429.html) once this user or this address tried too many invite codes
    (ACCOUNT_RATE_LIMITS["team_join"]): GETs count too, since a code's page says whether it exists."""
    return ratelimit.consume_or_429(request, action="team_join", limit_get=True)


@login_required
def my_teams(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/my_teams.html", {"teams": selectors.user_teams(user=request.user)})


def _visible_or_404(request: HttpRequest, team_id: int) -> tuple[Team, selectors.TeamAccess]:
    """A team the viewer may see, and what they may do with it; 404 otherwise (existence does not leak)."""
    team = selectors.team_get(team_id=team_id)
    access = team and selectors.team_access(team=team, user=request.user)
    if team is None or not access.view:
        raise Http404("No such team.")
    return team, access


def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's members: for its members and organizers only (see selectors.TeamAccess)."""
    team, access = _visible_or_404(request, team_id)
    context = {"team": team, "members": list(selectors.team_members(team=team)), "is_member": access.invite,
               "is_owner": access.new_code,
               # Standing disqualifications (submissions.moderation), read through the relation: the team is told.
               "disqualifications": list(team.disqualifications.filter(lifted_at__isnull=True).select_related("phase"))}
    if access.invite:  # the code is a key to the team: members only
        context["invite_url"] = request.build_absolute_uri(reverse("team_join", args=[team.invite_code]))
    return render(request, "accounts/team.html", context)


@login_required
@require_POST
def team_create(request: HttpRequest, slug: str) -> HttpResponse:
    challenge = challenge_or_404(request, slug)
    form = TeamCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the team a name (at most 100 characters).")
        return redirect("challenge", slug=challenge.slug)
    try:
        team = services.team_create(challenge=challenge, user=request.user, name=form.cleaned_data["name"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("challenge", slug=challenge.slug)
    messages.success(request, f"Team {team.name} created. Share the invite link below with your teammates.")
    return redirect("team", team_id=team.pk)


@login_required
def team_join(request: HttpRequest, code: str) -> HttpResponse:
    """GET: confirm which team the link joins. POST: join it."""
    if limited := _join_rate_limited(request):
        return limited
    team = selectors.team_by_invite_code(invite_code=code)
    if team is None:
        return render_error(request, "This invite link is not valid (it may have been replaced); "
                            "ask your team for a new one.", status=404)
    status, error = 200, ""
    if request.method == "POST":
        try:
            services.team_join(user=request.user, invite_code=code)
        except ApplicationError as exc:
            status, error = exc.status, exc.message
        else:
            messages.success(request, f"You are now in team {team.name}.")
            return redirect("team", team_id=team.pk)
    current = selectors.team_for(user=request.user, challenge=team.challenge)
    return render(request, "accounts/team_join.html", {"team": team, "current": current, "error": error},
                  status=status)


@login_required
@require_POST
def team_join_code(request: HttpRequest) -> HttpResponse:
    """Join with a code typed into a challenge page's team box."""
    if limited := _join_rate_limited(request):
        return limited
    form = TeamJoinForm(request.POST)
    back = safe_next(request, reverse("my_teams"))
    if not form.is_valid():
        messages.error(request, "Enter the invite code your team gave you.")
        return redirect(back)
    try:
        team = services.team_join(user=request.user, invite_code=form.cleaned_data["code"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    messages.success(request, f"You are now in team {team.name}.")
    return redirect("team", team_id=team.pk)


@login_required
@require_POST
def team_leave(request: HttpRequest, team_id: int) -> HttpResponse:
    team, _ = _visible_or_404(request, team_id)
    try:
        services.team_leave(user=request.user, team=team)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("team", team_id=team.pk)
    messages.success(request, f"You left team {team.name}.")
    return redirect("challenge", slug=team.challenge.slug)


@login_required
@require_POST
def team_new_invite_code(request: HttpRequest, team_id: int) -> HttpResponse:
    team, _ = _visible_or_404(request, team_id)
    try:
        services.team_new_invite_code(user=request.user, team=team)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "New invite code made; the old link no longer works.")
    return redirect("team", team_id=team.pk)


@never_cache
@login_required
def api_token(request: HttpRequest) -> HttpResponse:
    """The user's API token (for the egomask and evalai command-line tools), with rotate and revoke."""
    return render(request, "accounts/api_token.html", {
        "token": selectors.token_get(user=request.user),
        "api_url": request.build_absolute_uri("/api/v1/"),
    })


@login_required
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    services.token_get_or_create(user=request.user)
    messages.success(request, "Your API token is ready. Keep it secret: it acts as you.")
    return redirect("api_token")


@login_required
@require_POST
def api_token_rotate(request: HttpRequest) -> HttpResponse:
    services.token_rotate(user=request.user)
    messages.success(request, "New token made; the old one no longer works. Update your tools.")
    return redirect("api_token")


@login_required
@require_POST
def api_token_revoke(request: HttpRequest) -> HttpResponse:
    services.token_revoke(user=request.user)
    messages.success(request, "Token revoked; tools using it can no longer act for you.")
    return redirect("api_token")
