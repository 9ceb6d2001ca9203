"""The authorization table: for every URL pattern of the site (route name, or the pattern where it has no
name), the concrete URLs it is probed with, the methods, and the status each persona gets.

Columns (authz_world.PERSONAS): anonymous, outsider (signed up, in no team), owner (alice, Team A),
teammate (bob, Team A), other_team (carol, Team C), other_host (an organizer of the draft challenge only),
host_viewer (a viewer of this challenge), host (an organizer of this challenge), organizer (staff: every
challenge). Organizers' powers come from leaderboard.challenges.permissions, the one rule.
An expectation is one token per column; `+` means the request also did what it asks (the row's `state`
changed), so an action that redirects everyone is still told apart from one that was refused. `twin` is
the same request for an object that does not exist: whoever gets 404 (406 on the evalai routes) for the
real one must get the same answer for the twin, body and all, so that existence does not leak.

The site's rows are written out; the admin's are made from the registered model admins and ADMIN_RULES (a
model admin without a rule fails), so a model admin's own URL (get_urls) has no row until one is written here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from allauth.account.models import EmailAddress

from leaderboard.accounts.models import Membership, Team
from leaderboard.challenges.models import Phase, TermsAcceptance
from leaderboard.notifications.models import Preferences
from leaderboard.submissions.models import Submission, Upload
from leaderboard.submissions.snapshots import board_snapshot_take
from leaderboard.submissions.models import Analysis, Score

from .authz_world import PERSONAS, World, file_sha
from .conftest import PASSWORD


@dataclasses.dataclass(frozen=True)
class Probe:
    method: str
    path: str  # a template filled from World.ids
    expect: str  # one status per persona, `+` where the request took effect
    data: Any = None  # a dict, or (world, persona) -> dict
    kind: str = "form"  # form | json | raw
    state: Callable[[World, Any], object] | None = None
    prepare: Callable[[World, Any], None] | None = None
    twin: str | None = None

    def expected(self) -> dict[str, tuple[int, bool]]:
        tokens = self.expect.split()
        assert len(tokens) == len(PERSONAS), f"{self.method} {self.path}: {len(tokens)} columns"
        return {p: (int(t.rstrip("+")), t.endswith("+")) for p, t in zip(PERSONAS, tokens, strict=True)}


def get(path: str, expect: str, **extra: Any) -> Probe:
    return Probe("GET", path, expect, **extra)


def post(path: str, expect: str, **extra: Any) -> Probe:
    return Probe("POST", path, expect, **extra)


def every(status: int | str) -> str:
    return " ".join([str(status)] * len(PERSONAS))


# --- what a cell's request did --------------------------------------------------------------------------


def count(model: type, **lookup: object) -> Callable[[World, Any], int]:
    return lambda world, user: model.objects.filter(**lookup).count()


def field(model: type, key: str, name: str) -> Callable[[World, Any], object]:
    return lambda world, user: model.objects.filter(pk=world.ids[key]).values_list(name, flat=True).first()


def own_token(world: World, user: Any) -> str | None:
    return Token.objects.filter(user=user).values_list("key", flat=True).first() if user else None


def team_a_members(world: World, user: Any) -> int:
    return Membership.objects.filter(team_id=world.ids["team_a"]).count()


def own_acceptances(world: World, user: Any) -> int:
    return TermsAcceptance.objects.filter(user=user).count() if user else 0


def own_addresses(world: World, user: Any) -> int:
    return EmailAddress.objects.filter(user=user).count() if user else 0


def own_preferences(world: World, user: Any) -> tuple[bool, bool] | None:
    return Preferences.objects.filter(user=user).values_list("submission_mails", "announcement_mails").first()


def owner_preferences(world: World, user: Any) -> tuple[bool, bool] | None:
    return Preferences.objects.filter(user_id=world.ids["owner_pk"]).values_list(
        "submission_mails", "announcement_mails").first()


def scored_like_public(world: World, user: Any) -> None:
    """Team C's public submission and Team A's private one with the public one's scores and analysis (the world
    scores one submission only; a comparison needs two)."""
    analysis = Analysis.objects.get(submission_id=world.ids["public"])
    for key in ("other", "private"):
        for score in Score.objects.filter(submission_id=world.ids["public"]):
            score.pk, score.submission_id = None, world.ids[key]
            score.save()
        Analysis.objects.create(submission_id=world.ids[key], gt_version=analysis.gt_version, values=analysis.values,
                                by_trait=analysis.by_trait, errors=analysis.errors)


def drop_own_token(world: World, user: Any) -> None:
    Token.objects.filter(user=user).delete()


def restore_part(world: World, user: Any) -> None:
    world.put_part()


def snapshot_of(key: str) -> Callable[[World, Any], None]:
    """A prepare: snapshot 1 of the phase `key` (world.ids), taken by the server."""
    def take(world: World, user: Any) -> None:
        board_snapshot_take(phase=Phase.objects.select_related("challenge").get(pk=world.ids[key]), by=None,
                            reason="Cell snapshot")
    return take


# --- request bodies ---------------------------------------------------------------------------------------


def zip_file(world: World) -> SimpleUploadedFile:
    return SimpleUploadedFile("preds.zip", world.prediction_zip, content_type="application/zip")


def web_submission(world: World, persona: str) -> dict[str, Any]:
    return {"file": zip_file(world), "method_name": "Cell method", "is_public": "on"}


def api_submission(world: World, persona: str) -> dict[str, Any]:
    return {"file": zip_file(world), "method_name": "Cell method"}


def evalai_submission(world: World, persona: str) -> dict[str, Any]:
    return {"input_file": zip_file(world), "method_name": "Cell method"}


def own_credentials(world: World, persona: str) -> dict[str, str]:
    user = world.user(persona)
    return {"username": user.get_username(), "password": PASSWORD} if user else {"username": "nobody",
                                                                                  "password": "wrong"}


def login_credentials(world: World, persona: str) -> dict[str, str]:
    user = world.user(persona) or world.user("outsider")  # anonymous logs in as eve
    return {"login": user.get_username(), "password": PASSWORD}


def new_address(world: World, persona: str) -> dict[str, str]:
    return {"action_add": "", "email": f"second-{persona}@example.org"}


def upload_completion(world: World, persona: str) -> dict[str, str]:
    return {"sha256": file_sha(world.upload_zip), "method_name": "Large method"}


SIGNUP = {"username": "newcomer", "email": "newcomer@example.org", "password1": "a-long-new-password-9",
          "password2": "a-long-new-password-9"}
SUB = "/submissions/{%s}/"
PHASE = "/challenges/egomask/phases/test/"
DRAFT = "/challenges/draft/phases/dphase/"
V1 = "/api/v1/"
UPLOAD = V1 + "uploads/{upload}/"
EVALAI_PHASE = "/api/jobs/phases/{phase}/"
users = count(get_user_model())
submissions = count(Submission)
uploads = count(Upload)
upload_status = field(Upload, "upload", "status")
queued_status = field(Submission, "queued", "status")

# Who sees a submission (selectors.submission_access): its team and organizers always, others while it
# is on a revealed public board. The same answer on the page, its status JSON, the API and the evalai route.
TEAM_A_ONLY = "404 404 200 200 404 404 200 200 200"
TEAM_A_ONLY_EVALAI = "406 406 200 200 406 406 200 200 200"
# This challenge's organizers (its hosts, the viewer too, and staff) and nobody else.
ORGANIZER_ONLY = "404 404 404 404 404 404 200 200 200"
# The draft challenge is the other host's: its organizers are that host and staff, not this challenge's hosts.
DRAFT_ORGANIZERS = "404 404 404 404 404 200 404 404 200"
EXPORTERS = "401 404 404 404 404 404 200 200 200"
DRAFT_EXPORTERS = "401 404 404 404 404 200 404 404 200"
DRAFT_ORGANIZERS_EVALAI = "406 406 406 406 406 200 406 406 200"


def _seen_by(route: str, not_public: str, missing: int = 404) -> list[Probe]:
    """A submission's GETs: the public ones for everyone, the others as `not_public` says, none missing."""
    def at(kind: str) -> str:
        return route.replace("{id}", "{" + kind + "}")

    return [get(at("public"), every(200)), get(at("other"), every(200)), get(at("baseline"), every(200)),
            get(at("missing"), every(missing)),
            *(get(at(kind), not_public, twin=at("missing")) for kind in ("private", "hidden", "queued"))]


SITE: dict[str, list[Probe]] = {
    # --- pages anyone may read ----------------------------------------------------------------------
    "home": [get("/", every(200))],
    "challenge_list": [get("/challenges/", every(200))],
    "challenge": [get("/challenges/egomask/", every(200)),
                  get("/challenges/draft/", DRAFT_ORGANIZERS, twin="/challenges/nope/")],
    # The organizer dashboard: this challenge's organizers (viewers included); the draft's, its host and staff.
    "organize": [get("/challenges/egomask/organize/", "302 404 404 404 404 404 200 200 200",
                     twin="/challenges/nope/organize/"),
                 get("/challenges/draft/organize/", "302 404 404 404 404 200 404 404 200",
                     twin="/challenges/nope/organize/")],
    # The terms: anyone reads them (as the challenge page); whoever is signed in may accept them (for themselves).
    "challenge_terms": [get("/challenges/egomask/terms/", every(200)),
                        get("/challenges/draft/terms/", DRAFT_ORGANIZERS, twin="/challenges/nope/terms/"),
                        post("/challenges/egomask/terms/", "302 302+ 302+ 302+ 302+ 302+ 302+ 302+ 302+",
                             data=lambda w, p: {"accept": "yes", "terms_sha256": w.ids["terms_sha256"]},
                             state=own_acceptances)],
    "challenge_format": [get("/challenges/egomask/format/", every(200)),
                         get("/challenges/draft/format/", DRAFT_ORGANIZERS, twin="/challenges/nope/format/")],
    # Downloads: the example zip is made from public inputs only (the leak check reads its entries).
    "phase_example": [get(PHASE + "example.zip", every(200)),
                      get(DRAFT + "example.zip", every(404))],  # the draft phase has no ground truth
    "leaderboard": [get(PHASE + "leaderboard/overall/", every(200)), get(PHASE + "leaderboard/nope/", every(404)),
                    get(DRAFT + "leaderboard/overall/", DRAFT_ORGANIZERS)],
    # Board snapshots (snapshots.py): anyone reads those of a public board; the draft's, its organizers only.
    "board_snapshots": [get(PHASE + "snapshots/", every(200), prepare=snapshot_of("phase")),
                        get(DRAFT + "snapshots/", DRAFT_ORGANIZERS, prepare=snapshot_of("draft_phase"),
                            twin="/challenges/nope/phases/dphase/snapshots/")],
    **{name: [get(PHASE + f"snapshots/1.{suffix}", every(200), prepare=snapshot_of("phase")),
              get(PHASE + f"snapshots/1.{suffix}", every(404)),  # none taken
              get(DRAFT + f"snapshots/1.{suffix}", DRAFT_ORGANIZERS, prepare=snapshot_of("draft_phase"),
                  twin=f"/challenges/nope/phases/dphase/snapshots/1.{suffix}")]
       for name, suffix in (("board_snapshot_json", "json"), ("board_snapshot_csv", "csv"))},
    "board_snapshot_latest": [get(PHASE + "snapshots/latest.json", every(302), prepare=snapshot_of("phase")),
                              get(PHASE + "snapshots/latest.json", every(404)),
                              get(DRAFT + "snapshots/latest.json", "404 404 404 404 404 302 404 404 302",
                                  prepare=snapshot_of("draft_phase"),
                                  twin="/challenges/nope/phases/dphase/snapshots/latest.json")],
    # The board by trait: as the board (comparisons.board_by_trait reads it with the viewer).
    "leaderboard_by_trait": [get(PHASE + "leaderboard/overall/by-trait/?trait=presence", every(200)),
                             get(PHASE + "leaderboard/nope/by-trait/", every(404)),
                             get(DRAFT + "leaderboard/overall/by-trait/", DRAFT_ORGANIZERS)],
    # A comparison: whoever sees every submission in it (submission_access), else answered as missing (the web's
    # twin check is in test_compare.py: the anonymous 404 page's login link repeats the ids asked for).
    "compare": [get(PHASE + "compare/?submissions={public},{other}", every(200), prepare=scored_like_public),
                get(PHASE + "compare/?submissions={public},{private}", TEAM_A_ONLY, prepare=scored_like_public)],
    "baseline_run": [get("/baselines/runs/{run}/", every(200)),
                     get("/baselines/runs/{queued_run}/", ORGANIZER_ONLY, twin="/baselines/runs/{missing}/")],
    # The queue's public figures (counts only), like the challenge's other pages.
    "challenge_status": [get("/challenges/egomask/status/", every(200)),
                         get("/challenges/draft/status/", DRAFT_ORGANIZERS, twin="/challenges/nope/status/")],
    "challenge_status_json": [get("/challenges/egomask/status.json", every(200)),
                              get("/challenges/draft/status.json", DRAFT_ORGANIZERS,
                                  twin="/challenges/nope/status.json")],
    # --- operations: liveness for everyone; the full check's verdict for everyone (no worker runs in this
    # world: unhealthy), its details for operators (test_health.py); /metrics does not exist without METRICS_TOKEN.
    # The public keys that sign score receipts (submissions/receipts.py).
    "receipt_keys": [get("/.well-known/egomask-receipt-key.json", every(200))],
    "health_live": [get("/health/live/", every(200))],
    "health": [get("/health/", every(503))],
    "metrics": [get("/metrics", every(404))],
    # --- submitting and one's submissions ------------------------------------------------------------
    "submit": [get(PHASE + "submit/", "302 200 200 200 200 200 200 200 200"),
               post(PHASE + "submit/",
                    "302 403 302+ 302+ 302+ 403 403 403 403", data=web_submission, state=submissions)],
    "my_submissions": [get(PHASE + "submissions/", "302 403 200 200 200 403 403 403 403")],
    "submission": _seen_by("/submissions/{id}/", TEAM_A_ONLY),
    "submission_status": _seen_by("/submissions/{id}/status.json", TEAM_A_ONLY),
    "submission_cancel": [
        post(SUB % "queued" + "cancel/", "302 404 302+ 302+ 404 404 302 302+ 302+", state=queued_status,
             twin=SUB % "missing" + "cancel/"),
        post(SUB % "public" + "cancel/", every(302), state=field(Submission, "public", "status"))],
    "submission_edit_method": [
        post(SUB % "public" + "method/", "302 302 302+ 302+ 302 302 302 302 302", data={"method_name": "Renamed"},
             state=field(Submission, "public", "method_name")),
        post(SUB % "private" + "method/", "302 404 302+ 302+ 404 404 302 302 302", data={"method_name": "Renamed"},
             state=field(Submission, "private", "method_name"), twin=SUB % "missing" + "method/")],
    "submission_set_public": [
        post(SUB % "public" + "public/", "302 302 302+ 302+ 302 302 302 302 302", data={"is_public": "0"},
             state=field(Submission, "public", "is_public")),
        post(SUB % "private" + "public/", "302 404 302+ 302+ 404 404 302 302 302", data={"is_public": "1"},
             state=field(Submission, "private", "is_public"), twin=SUB % "missing" + "public/")],
    # --- accounts -----------------------------------------------------------------------------------------
    "account_signup": [get("/signup/", "200 302 302 302 302 302 302 302 302"),
                       post("/signup/", "302+ 302 302 302 302 302 302 302 302", data=SIGNUP, state=users)],
    "account_login": [get("/login/", "200 302 302 302 302 302 302 302 302"),
                      post("/login/", every(302), data=login_credentials)],
    "account_logout": [get("/logout/", "302 200 200 200 200 200 200 200 200"), post("/logout/", every(302))],
    # allauth's pages (under /account/): one's own account only, so every signed-in persona alike.
    "account_inactive": [get("/account/inactive/", every(200))],
    "account_reauthenticate": [get("/account/reauthenticate/", "302 200 200 200 200 200 200 200 200")],
    # Confirming one's password again by a mailed code (allauth 65.22): asking shows the form, confirming
    # without having asked goes back to asking.
    "account_request_reauthentication_code": [get("/account/reauthenticate/code/",
                                                  "302 200 200 200 200 200 200 200 200")],
    "account_confirm_reauthentication_code": [get("/account/reauthenticate/code/confirm/", every(302))],
    "account_email": [get("/account/email/", "302 200 200 200 200 200 200 200 200"),
                      post("/account/email/", "302 302+ 302+ 302+ 302+ 302+ 302+ 302+ 302+", data=new_address,
                           state=own_addresses)],
    "account_email_verification_sent": [get("/account/confirm-email/", every(200))],
    "account_confirm_email": [get("/account/confirm-email/not-a-key/", every(200))],  # "expired or invalid"
    "account_change_password": [get("/account/password/change/", "302 200 200 200 200 200 200 200 200")],
    "account_set_password": [get("/account/password/set/", every(302))],  # they have a password: change it
    "account_confirm_login_code": [get("/account/login/code/confirm/", every(302))],  # no code asked for
    "account_reset_password": [get("/account/password/reset/", every(200)),
                               post("/account/password/reset/", every(302), data={"email": "alice@example.org"})],
    "account_reset_password_done": [get("/account/password/reset/done/", every(200))],
    "account_reset_password_from_key": [get("/account/password/reset/key/1-not-a-key/", every(200))],  # "no longer"
    "account_reset_password_from_key_done": [get("/account/password/reset/key/done/", every(200))],
    # --- notifications: one's own choices; the unsubscribe link is signed (the token is the credential) ----------
    "notification_settings": [get("/account/notifications/", "302 200 200 200 200 200 200 200 200"),
                              post("/account/notifications/", "302 302+ 302+ 302+ 302+ 302+ 302+ 302+ 302+",
                                   data={"submission_mails": "on"}, state=own_preferences)],
    "notification_unsubscribe": [get("/unsubscribe/{unsubscribe_owner}/", every(200)),
                                 post("/unsubscribe/{unsubscribe_owner}/", every("200+"), state=owner_preferences),
                                 post("/unsubscribe/forged/", every(404), state=owner_preferences)],
    "api_token": [get("/account/api-token/", "302 200 200 200 200 200 200 200 200")],
    "api_token_create": [post("/account/api-token/create/",
                              "302 302+ 302+ 302+ 302+ 302+ 302+ 302+ 302+", prepare=drop_own_token,
                              state=own_token)],
    "api_token_rotate": [post("/account/api-token/rotate/",
                              "302 302+ 302+ 302+ 302+ 302+ 302+ 302+ 302+", state=own_token)],
    "api_token_revoke": [post("/account/api-token/revoke/",
                              "302 302+ 302+ 302+ 302+ 302+ 302+ 302+ 302+", state=own_token)],
    # --- teams: a team's page and members are its members' and the organizers' (accounts.selectors.team_access)
    "my_teams": [get("/teams/", "302 200 200 200 200 200 200 200 200")],
    "team": [get("/teams/{team_a}/", TEAM_A_ONLY, twin="/teams/{missing}/"),
             get("/teams/{team_c}/", "404 404 404 404 200 404 200 200 200", twin="/teams/{missing}/")],
    "team_leave": [post("/teams/{team_a}/leave/", "302 404 302+ 302+ 404 404 302 302 302", state=team_a_members,
                        twin="/teams/{missing}/leave/")],
    "team_new_invite_code": [post("/teams/{team_a}/invite-code/", "302 404 302+ 302 404 404 302 302 302",
                                  state=field(Team, "team_a", "invite_code"), twin="/teams/{missing}/invite-code/")],
    # An invite code is a key to its team: whoever has it may join (organizers too: they have no team).
    "team_join_code": [post("/teams/join/",
                            "302 302+ 302 302 302 302+ 302+ 302+ 302+", data=lambda w, p: {"code": w.ids["invite_a"]},
                            state=team_a_members)],
    "team_join": [get("/teams/join/{invite_a}/", "302 200 200 200 200 200 200 200 200"),
                  get("/teams/join/nope/", "302 404 404 404 404 404 404 404 404"),
                  post("/teams/join/{invite_a}/", "302 302+ 302 302 409 302+ 302+ 302+ 302+", state=team_a_members)],
    "team_create": [get("/challenges/egomask/teams/", "302 405 405 405 405 405 405 405 405"),
                    post("/challenges/egomask/teams/",
                         "302 302+ 302 302 302 302+ 302+ 302+ 302+", data={"name": "Fresh team"},
                         state=count(Team))],
    # --- the API's documentation --------------------------------------------------------------------------
    "api-schema": [get("/api/schema/", every(200))],
    "api-docs": [get("/api/docs/", every(200))],
    # --- /api/v1/ (token authentication) ---------------------------------------------------------------------
    "api-token": [get(V1 + "auth/token/", "401 405 405 405 405 405 405 405 405"),
                  post(V1 + "auth/token/", "400 200 200 200 200 200 200 200 200", data=own_credentials, kind="json"),
                  Probe("DELETE", V1 + "auth/token/", "401 204+ 204+ 204+ 204+ 204+ 204+ 204+ 204+", state=own_token)],
    "api-teams": [get(V1 + "teams/", "401 200 200 200 200 200 200 200 200")],
    "api-team": [get(V1 + "teams/{team_a}/", TEAM_A_ONLY, twin=V1 + "teams/{missing}/"),
                 get(V1 + "teams/{team_c}/", "404 404 404 404 200 404 200 200 200", twin=V1 + "teams/{missing}/")],
    "api-challenges": [get(V1 + "challenges/", every(200))],
    "api-challenge": [get(V1 + "challenges/{challenge}/", every(200)),
                      get(V1 + "challenges/{draft_challenge}/", DRAFT_ORGANIZERS, twin=V1 + "challenges/{missing}/")],
    "api-challenge-status": [get(V1 + "challenges/{challenge}/status/", every(200)),
                             get(V1 + "challenges/{draft_challenge}/status/", DRAFT_ORGANIZERS,
                                 twin=V1 + "challenges/{missing}/status/")],
    "api-phase": [get(V1 + "phases/{phase}/", every(200)),
                  get(V1 + "phases/{draft_phase}/", DRAFT_ORGANIZERS, twin=V1 + "phases/{missing}/")],
    "api-phase-submissions": [
        get(V1 + "phases/{phase}/submissions/", "401 403 200 200 200 403 403 403 403"),
        post(V1 + "phases/{phase}/submissions/", "401 403 201+ 201+ 201+ 403 403 403 403", data=api_submission,
             state=submissions)],
    "api-leaderboard": [get(V1 + "phases/{phase}/leaderboard/", every(200)),
                        get(V1 + "phases/{draft_phase}/leaderboard/", DRAFT_ORGANIZERS,
                            twin=V1 + "phases/{missing}/leaderboard/")],
    "api-phase-snapshots": [get(V1 + "phases/{phase}/snapshots/", every(200), prepare=snapshot_of("phase")),
                            get(V1 + "phases/{draft_phase}/snapshots/", DRAFT_ORGANIZERS,
                                prepare=snapshot_of("draft_phase"), twin=V1 + "phases/{missing}/snapshots/")],
    "api-leaderboard-by-trait": [get(V1 + "phases/{phase}/leaderboard/by-trait/?trait=presence", every(200)),
                                 get(V1 + "phases/{draft_phase}/leaderboard/by-trait/", DRAFT_ORGANIZERS,
                                     twin=V1 + "phases/{missing}/leaderboard/by-trait/")],
    "api-compare": [get(V1 + "phases/{phase}/compare/?submissions={public},{other}", every(200),
                        prepare=scored_like_public),
                    get(V1 + "phases/{phase}/compare/?submissions={public},{private}", TEAM_A_ONLY,
                        prepare=scored_like_public,
                        twin=V1 + "phases/{phase}/compare/?submissions={public},{missing}")],
    # Downloads: the board as CSV.
    "api-leaderboard-csv": [get(V1 + "phases/{phase}/leaderboard.csv", every(200)),
                            get(V1 + "phases/{draft_phase}/leaderboard.csv", DRAFT_ORGANIZERS,
                                twin=V1 + "phases/{missing}/leaderboard.csv")],
    # A phase's exports (exports.py): its challenge's organizers, viewers included; to anyone else the phase
    # does not exist; a script without a token is told to send one.
    **{f"api-export-{name.replace('.', '-')}": [
        get(V1 + f"phases/{{phase}}/export/{name}", EXPORTERS, twin=V1 + f"phases/{{missing}}/export/{name}"),
        get(V1 + f"phases/{{draft_phase}}/export/{name}", DRAFT_EXPORTERS,
            twin=V1 + f"phases/{{missing}}/export/{name}")]
       for name in ("submissions.csv", "submissions.json", "boards.csv", "boards.json", "results.zip")},
    "api-upload-start": [post(V1 + "phases/{phase}/uploads/", "401 403 201+ 201+ 201+ 403 403 403 403", kind="json",
                              data={"filename": "big.zip", "size": 1000, "parts": 1}, state=uploads)],
    "api-submission": [
        *_seen_by(V1 + "submissions/{id}/", TEAM_A_ONLY),
        Probe("PATCH", V1 + "submissions/{public}/", "401 403 200+ 200+ 403 403 403 403 403", kind="json",
              data={"method_name": "Renamed"}, state=field(Submission, "public", "method_name")),
        Probe("PATCH", V1 + "submissions/{private}/", "401 404 200+ 200+ 404 404 403 403 403", kind="json",
              data={"method_name": "Renamed"}, state=field(Submission, "private", "method_name"),
              twin=V1 + "submissions/{missing}/")],
    # A receipt: whoever sees the submission (and its exact scores: no phase of this world runs the Ladder,
    # test_receipts.py has one that does); only the really scored one has a receipt, the others answer 409.
    "api-submission-receipt": [
        get(V1 + "submissions/{public}/receipt/", every(200)),
        *(get(V1 + SUB[1:] % kind + "receipt/", every(409)) for kind in ("other", "baseline")),
        get(V1 + "submissions/{missing}/receipt/", every(404)),
        *(get(V1 + SUB[1:] % kind + "receipt/", "404 404 409 409 404 404 409 409 409",
              twin=V1 + "submissions/{missing}/receipt/") for kind in ("private", "hidden", "queued"))],
    # Diagnostics: whoever sees the submission (its trait buckets as diagnostics.py's leak rule allows).
    "api-submission-diagnostics": _seen_by(V1 + "submissions/{id}/diagnostics/", TEAM_A_ONLY),
    # A frame timeline: where per-frame details are shown (this test phase: its organizers only), once scored.
    "api-submission-timelines": [
        get(V1 + "submissions/{public}/timelines/?expression=short/short_000/0", "403 403 403 403 403 403 200 200 200"),
        get(V1 + "submissions/{public}/timelines/?expression=short/nope/0", "403 403 403 403 403 403 404 404 404"),
        get(V1 + "submissions/{private}/timelines/?expression=short/short_000/0", "404 404 403 403 404 404 409 409 409",
            twin=V1 + "submissions/{missing}/timelines/?expression=short/short_000/0")],
    "api-submission-cancel": [
        post(V1 + "submissions/{queued}/cancel/", "401 404 200+ 200+ 404 404 403 200+ 200+", state=queued_status,
             twin=V1 + "submissions/{missing}/cancel/"),
        post(V1 + "submissions/{public}/cancel/", "401 403 409 409 403 403 409 409 409",
             state=field(Submission, "public", "status"))],
    # An upload is its uploader's (and the organizers'): to anyone else it does not exist.
    # Completing makes a submission for whoever completes: the uploader only (an organizer is refused).
    "api-upload-complete": [post(UPLOAD + "complete/", "401 404 201+ 404 404 404 404 403 403", kind="json",
                                 data=upload_completion, prepare=restore_part, state=upload_status,
                                 twin=V1 + "uploads/{missing_upload}/complete/")],
    "api-upload-abort": [post(UPLOAD + "abort/", "401 404 204+ 404 404 404 404 204+ 204+", prepare=restore_part,
                              state=upload_status, twin=V1 + "uploads/{missing_upload}/abort/")],
    # A part URL is signed (like S3's presigned URLs): whoever has it may send the part, nobody else.
    "api-upload-part": [Probe("PUT", UPLOAD + "parts/1/?sig={part_sig}", every(200), kind="raw",
                              data=lambda w, p: w.upload_zip),
                        Probe("PUT", UPLOAD + "parts/1/?sig=forged", every(403), kind="raw",
                              data=lambda w, p: w.upload_zip)],
    "api/v1/(?P<rest>.*)$": [get(V1 + "nope/", every(404))],
    # --- the stock evalai CLI's routes (404 is sent as 406, which the CLI prints) ---------------------------
    "evalai-challenges": [get("/api/challenges/challenge/all/all/all/", every(200))],
    "evalai-challenge": [get("/api/challenges/challenge/{challenge}/", every(200)),
                         get("/api/challenges/challenge/{draft_challenge}/", DRAFT_ORGANIZERS_EVALAI,
                             twin="/api/challenges/challenge/{missing}/")],
    "evalai-phases": [get("/api/challenges/challenge/{challenge}/challenge_phase/", every(200)),
                      get("/api/challenges/challenge/{draft_challenge}/challenge_phase/", DRAFT_ORGANIZERS_EVALAI,
                          twin="/api/challenges/challenge/{missing}/challenge_phase/")],
    "evalai-phase": [get("/api/challenges/challenge/{challenge}/challenge_phase/{phase}/", every(200)),
                     get("/api/challenges/challenge/{draft_challenge}/challenge_phase/{draft_phase}/",
                         DRAFT_ORGANIZERS_EVALAI,
                         twin="/api/challenges/challenge/{missing}/challenge_phase/{missing}/")],
    "evalai-splits": [get("/api/challenges/{challenge}/challenge_phase_split/", every(200)),
                      get("/api/challenges/{draft_challenge}/challenge_phase_split/", DRAFT_ORGANIZERS_EVALAI,
                          twin="/api/challenges/{missing}/challenge_phase_split/")],
    "evalai-submissions": [
        get("/api/jobs/challenge/{challenge}/challenge_phase/{phase}/submission/",
            "401 200 200 200 200 200 200 200 200"),
        post("/api/jobs/challenge/{challenge}/challenge_phase/{phase}/submission/",
             "401 403 201+ 201+ 201+ 403 403 403 403",
             data=evalai_submission, state=submissions)],
    "evalai-submission": [
        *_seen_by("/api/jobs/submission/{id}/", TEAM_A_ONLY_EVALAI, missing=406),
        # An upload handle (`submit --large`): the uploader's; its submission is not made yet.
        get("/api/jobs/submission/{handle}/", "406 406 400 406 406 406 406 400 400",
            twin="/api/jobs/submission/{missing_handle}/")],
    # The signed link the CLI prints for a result: it needs no credentials, and nothing works without it.
    "evalai-submission-result": [get("/api/jobs/submission/{public}/result/?{result_sig}", every(200)),
                                 get("/api/jobs/submission/{public}/result/", every(403))],
    "evalai-leaderboard": [get("/api/jobs/challenge_phase_split/{split}/leaderboard/", every(200)),
                           get("/api/jobs/challenge_phase_split/{draft_split}/leaderboard/", DRAFT_ORGANIZERS_EVALAI,
                               twin="/api/jobs/challenge_phase_split/{missing}/leaderboard/")],
    "evalai-large-start": [post(EVALAI_PHASE + "get_submission_file_presigned_url/",
                                "401 403 201+ 201+ 201+ 403 403 403 403",
                                data={"file_name": "big.zip", "num_file_chunks": "1"}, state=uploads)],
    "evalai-large-finish": [post(EVALAI_PHASE + "finish_submission_file_upload/{handle}/",
                                 "401 406 400 406 406 406 406 400 400",
                                 data={"upload_id": "not-a-ticket"}, state=upload_status,
                                 twin=EVALAI_PHASE + "finish_submission_file_upload/{missing_handle}/")],
    # Sent before finishing, it gives the upload up.
    "evalai-large-message": [post(EVALAI_PHASE + "send_submission_message/{handle}/",
                                  "401 406 400+ 406 406 406 406 400+ 400+",
                                  state=upload_status, prepare=restore_part,
                                  twin=EVALAI_PHASE + "send_submission_message/{missing_handle}/")],
    "evalai-unsupported": [get("/api/participants/participant_team", every(406)),
                           post("/api/participants/participant_team", every(406))],
}

def table() -> dict[str, list[Probe]]:
    from .authz_admin import ADMIN_SITE, admin_rows  # it builds on this module's helpers

    return {**SITE, **ADMIN_SITE, **admin_rows()}


# --- the routes that exist ------------------------------------------------------------------------------------


def route_keys() -> Iterator[str]:
    """Every URL pattern of the site, nested ones included, as its route name or (unnamed) its pattern."""

    def join(prefix: str, pattern: object) -> str:  # as ResolverMatch.route joins them
        return prefix + str(pattern).removeprefix("^") if prefix else str(pattern)

    def walk(patterns: list, prefix: str, namespace: str) -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = ":".join(filter(None, [namespace, pattern.namespace]))
                yield from walk(pattern.url_patterns, join(prefix, pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                yield (":".join(filter(None, [namespace, pattern.name])) if pattern.name
                       else join(prefix, pattern.pattern))

    yield from walk(get_resolver().url_patterns, "", "")
