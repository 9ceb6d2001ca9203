"""Sign-up and team pages. Login and logout are django.contrib.auth's own views (see urls.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from leaderboard.errors import ApplicationError
from leaderboard.webkit import challenge_or_404, render_error, safe_next

from . import selectors, services
from .forms import SignupForm, TeamCreateForm, TeamJoinForm
from .models import Team


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(safe_next(request, reverse("home")))
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = services.user_signup(username=data["username"], email=data["email"],
                                            password=data["password1"])
            except ApplicationError as exc:
                form.add_error("password1" if "password" in exc.detail else None, exc.message)
                status = exc.status
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome, {user.get_username()}. Create or join a team on a challenge page.")
                return redirect(safe_next(request, reverse("home")))
    return render(request, "registration/signup.html", {"form": form, "next": safe_next(request, "")},
                  status=status)


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
