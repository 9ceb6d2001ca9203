"""The world the authorization table is probed in: the personas of conftest.py, objects of every kind each
of them may or may not see (public, private, hidden, queued submissions; teams; an upload; baseline runs;
an unpublished challenge), what must never reach a response (ground truth) or reach only some personas
(a team's member names, invite code, private method names; a user's token), and clients acting as a persona.

`probe` sends one request as one persona inside a savepoint that is rolled back, so every cell of the
table starts from the same world (the files of private storage are not rolled back: a cell that uses up
an upload's part puts it back first, see World.put_part).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from leaderboard.accounts.models import Team
from leaderboard.baselines.models import BaselineRun, ReportedResult
from leaderboard.challenges.models import Challenge, Host, PhaseSplit
from leaderboard.challenges.services import phase_create
from leaderboard.challenges.terms import terms_sha256
from leaderboard.notifications.models import Announcement
from leaderboard.notifications.selectors import unsubscribe_token
from leaderboard.submissions.models import Disqualification, Submission, Upload
from leaderboard.submissions.parts import part_signature
from leaderboard.submissions.uploads import upload_receive_part, upload_start

from .conftest import make_user

__all__ = ["world"]  # the fixture, for `import *` (the rest is imported by name)

# The columns of the table, in this order. The hosts (leaderboard.challenges.models.Host): other_host organizes
# the draft challenge only (on this challenge it must get what the outsider gets), host_viewer is a viewer
# of this challenge (sees what an organizer sees, changes nothing), host an organizer of it; organizer is
# staff (every challenge).
PERSONAS = ("anonymous", "outsider", "owner", "teammate", "other_team", "other_host", "host_viewer", "host",
            "organizer")
HOSTS = ("host_viewer", "host", "organizer")  # who sees everything of this challenge
MODERATORS = ("host", "organizer")  # who changes things on it
MISSING = 999999  # an id no object has
CSRF_SECRET = "authzTestCsrfSecret0123456789abc"  # 32 characters: a CSRF cookie value Django accepts

Users = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Secret:
    """Text that may reach only `allowed` personas (organizers on admin pages too, with `admin`)."""

    label: str
    pattern: re.Pattern[str]
    allowed: frozenset[str]
    admin: bool = False


def _secret(label: str, text: str, *allowed: str, word: bool = False, admin: bool = False) -> Secret:
    # As sent: raw, HTML-escaped (pages) or JSON-escaped (API answers).
    forms = {text, html.escape(text), json.dumps(text)[1:-1]}
    alternatives = "|".join(re.escape(f) for f in sorted(forms))
    body = rf"\b(?:{alternatives})\b" if word else f"(?:{alternatives})"
    return Secret(label, re.compile(body), frozenset(allowed), admin)


@dataclasses.dataclass
class World:
    users: Users
    ids: dict[str, Any]
    secrets: list[Secret]
    prediction_zip: bytes
    upload: Upload
    upload_zip: bytes

    def user(self, persona: str) -> Any:
        return self.users[persona]

    def put_part(self) -> None:
        """The upload's one part on this server again (completing or aborting the upload removes it)."""
        upload_receive_part(upload_id=self.upload.pk, part_number=1, signature=self.ids["part_sig"],
                            stream=io.BytesIO(self.upload_zip))

    def path(self, template: str) -> str:
        return template.format(**self.ids)


def _gt_rles(gt_dir: Path) -> set[str]:
    """Every mask string of the ground truth (long enough not to occur by chance in a page)."""
    found: set[str] = set()
    for path in (gt_dir / "annotations").rglob("*.json"):
        for mask in json.loads(path.read_text()).values():
            if len(mask["counts"]) >= 8:
                found.add(mask["counts"])
    return found


@pytest.fixture
def world(challenge, phase, alice, bob, carol, eve, organizer, submit, score, prediction_zip, synthetic) -> World:
    hosts = {persona: make_user(name) for persona, name in (("other_host", "olga"), ("host_viewer", "vera"),
                                                            ("host", "hector"))}
    users = {"anonymous": None, "outsider": eve, "owner": alice, "teammate": bob, "other_team": carol, **hosts,
             "organizer": organizer}
    team_a, team_c = alice.memberships.get().team, carol.memberships.get().team
    finished = {"status": Submission.Status.FINISHED, "finished_at": timezone.now()}

    public = score(submit(alice, method_name="Public method of Team A"))
    assert public.status == Submission.Status.FINISHED, public.failure_message
    private = submit(alice, method_name="Private method of Team A", is_public=False)
    hidden = submit(alice, method_name="Hidden method of Team A")
    queued = submit(bob, method_name="Queued method of Team A")
    other = submit(carol, method_name="Public method of Team C")
    # Empty masks: the admin's download of its zip carries no ground-truth mask (a good prediction repeats some).
    other_private = submit(carol, "empty", method_name="Private method of Team C", is_public=False)
    baseline = submit(organizer, method_name="Baseline method", is_baseline=True)
    Submission.objects.filter(pk__in=[private.pk, hidden.pk, other.pk, other_private.pk, baseline.pk]).update(
        **finished)
    Submission.objects.filter(pk=hidden.pk).update(hidden=True)
    run = BaselineRun.objects.create(phase=phase, runner="colour", runner_version="1.0.0", device="cpu",
                                     user=organizer, submission=baseline, status=BaselineRun.Status.FINISHED)
    queued_run = BaselineRun.objects.create(phase=phase, runner="empty", runner_version="1.0.0", device="cpu",
                                            user=organizer, status=BaselineRun.Status.QUEUED)
    reported = ReportedResult.objects.create(phase=phase, method="Paper method", source_url="https://example.org/p",
                                             values={"overall": {"IoU_gold_pred": 12.5}})
    group = Group.objects.create(name="Reviewers")
    Challenge.objects.filter(pk=challenge.pk).update(terms="Play **fair**.")
    challenge.refresh_from_db()
    announcement = Announcement.objects.create(challenge=challenge, subject="Welcome", body="Hello",
                                               created_by=organizer)
    # A lifted one: the admin's rows have an object, and Team C still submits and is on the board.
    lifted = Disqualification.objects.create(phase=phase, team=team_c, reason="Cell disqualification",
                                             by=organizer, lifted_at=timezone.now(), lifted_by=organizer,
                                             lift_reason="Cell reinstatement")

    draft = Challenge.objects.create(slug="draft", title="Draft challenge", is_published=False)
    draft_phase = phase_create(challenge=draft, slug="dphase", name="Draft phase")
    Host.objects.create(challenge=draft, user=hosts["other_host"], role=Host.Role.ORGANIZER)
    Host.objects.create(challenge=challenge, user=hosts["host_viewer"], role=Host.Role.VIEWER)
    Host.objects.create(challenge=challenge, user=hosts["host"], role=Host.Role.ORGANIZER)

    upload_zip = prediction_zip("noisy")
    ticket = upload_start(phase=phase, user=alice, filename="big.zip", size=len(upload_zip))
    upload = ticket.upload
    tokens = {persona: Token.objects.create(user=user) for persona, user in users.items() if user is not None}

    bundle = phase.ground_truth
    ids = {
        "challenge": challenge.pk, "phase": phase.pk, "split": PhaseSplit.objects.get(phase=phase, code="overall").pk,
        "draft_challenge": draft.pk, "draft_phase": draft_phase.pk,
        "draft_split": PhaseSplit.objects.get(phase=draft_phase, code="overall").pk,
        "public": public.pk, "private": private.pk, "hidden": hidden.pk, "queued": queued.pk, "other": other.pk,
        "other_private": other_private.pk,
        "baseline": baseline.pk, "missing": MISSING, "team_a": team_a.pk, "team_c": team_c.pk,
        "invite_a": team_a.invite_code, "run": run.pk, "queued_run": queued_run.pk,
        "upload": upload.pk, "part_sig": part_signature(upload.pk, 1), "handle": upload.pk.int,
        "missing_upload": uuid.UUID(int=upload.pk.int ^ 1), "missing_handle": upload.pk.int ^ 1,
        "owner_pk": alice.pk, "admin_team_type": ContentType.objects.get_for_model(Team).pk,
        "admin": {"auth_group": group.pk, "auth_user": alice.pk, "authtoken_tokenproxy": alice.pk,
                  "accounts_team": team_a.pk, "challenges_challenge": challenge.pk,
                  "challenges_groundtruthbundle": bundle.pk, "submissions_submission": public.pk,
                  "challenges_phase": phase.pk, "baselines_baselinerun": run.pk,
                  "baselines_reportedresult": reported.pk, "account_emailaddress": alice.emailaddress_set.get().pk,
                  "notifications_announcement": announcement.pk, "submissions_disqualification": lifted.pk},
        "unsubscribe_owner": unsubscribe_token(user=alice, topic="announcements"),
        "terms_sha256": terms_sha256(challenge=challenge),
    }
    team_a_only, team_c_only = ("owner", "teammate", *HOSTS), ("other_team", *HOSTS)
    secrets = [_secret(f"ground truth mask {rle!r}", rle) for rle in sorted(_gt_rles(synthetic["gt_dir"]))]
    secrets += [
        _secret("the ground truth's file in storage", bundle.file.name, admin=True),
        _secret("the ground truth file's sha256", bundle.sha256, admin=True),
        # A key to the team: its members (and the team's admin page) only; the site's team page hides it
        # from organizers too.
        _secret("Team A's invite code", team_a.invite_code, "owner", "teammate", admin=True),
        _secret("Team C's invite code", team_c.invite_code, "other_team", admin=True),
        _secret("alice's upload", str(upload.pk), "owner", *MODERATORS),
        *(_secret(f"a Team A member's {what}", text, *team_a_only, word=True)
          for what, text in (("name", "alice"), ("name", "bob"), ("email", alice.email), ("email", bob.email))),
        *(_secret(f"a Team C member's {what}", text, *team_c_only, word=True)
          for what, text in (("name", "carol"), ("email", carol.email))),
        _secret("eve's name", "eve", "outsider", "organizer", word=True),  # staff: the users' admin
        *(_secret(f"Team A's {s.method_name!r}", s.method_name, *team_a_only) for s in (private, hidden, queued)),
        _secret("Team C's private method", other_private.method_name, *team_c_only),
        *(_secret(f"{persona}'s API token", token.key, persona, "organizer") for persona, token in tokens.items()),
    ]
    world = World(users=users, ids=ids, secrets=secrets, prediction_zip=prediction_zip("good"), upload=upload,
                  upload_zip=upload_zip)
    world.put_part()
    # The link `evalai submission S result` prints for the team (it needs no credentials: it is signed).
    link = client_for(world, "owner", api=True).get(f"/api/jobs/submission/{public.pk}/").json()
    ids["result_sig"] = link["submission_result_file"].split("?", 1)[1]
    return world


# --- clients ----------------------------------------------------------------------------------------


def client_for(world: World, persona: str, *, api: bool) -> Client:
    """A client as the persona that enforces CSRF as browsers get it enforced: the API with the persona's
    token (no CSRF by design), the site and the admin with a session and a CSRF cookie whose value the
    requests send back as the form field (see csrf_data)."""
    user = world.user(persona)
    if api:
        headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.get(user=user).key}"} if user else {}
        return Client(enforce_csrf_checks=True, **headers)
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.cookies["csrftoken"] = CSRF_SECRET
    return client


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: str  # the text a reader of the response gets (a zip's entries unpacked)
    effect: bool


def readable(response: HttpResponse) -> str:
    """The response's text, with a zip's entries unpacked (a download must not carry ground truth either)."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Type", "").startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "\n".join(f"{name}\n{archive.read(name).decode('utf-8', 'replace')}"
                             for name in archive.namelist())
    return content.decode("utf-8", "replace")


def send(client: Client, method: str, path: str, data: Any, kind: str) -> HttpResponse:
    call = getattr(client, method.lower())
    if method == "GET":
        return call(path)
    if kind == "json":
        return call(path, data or {}, content_type="application/json")
    if kind == "raw":
        return call(path, data, content_type="application/octet-stream")
    if method == "POST":
        return call(path, data or {})  # multipart, as a browser's form with a file sends it
    return call(path, data or "", content_type="application/x-www-form-urlencoded")


def probe(world: World, persona: str, *, method: str, path: str, data: Any = None, kind: str = "form",
          api: bool, state: Callable[[World, Any], object] | None = None,
          prepare: Callable[[World, Any], None] | None = None) -> Answer:
    """One request as one persona, rolled back afterwards; `effect`: whether `state` changed."""
    user = world.user(persona)
    cache.clear()  # throttles and evalai upload messages: no cell sees another's
    with transaction.atomic():
        if prepare:
            prepare(world, user)
        before = state(world, user) if state else None
        client = client_for(world, persona, api=api)
        payload = data(world, persona) if callable(data) else data
        if not api and method != "GET":  # a form sends its CSRF token back
            payload = {**(payload or {}), "csrfmiddlewaretoken": CSRF_SECRET}
        response = send(client, method, path, payload, kind)
        effect = bool(state) and state(world, user) != before
        answer = Answer(response.status_code, readable(response), effect)
        transaction.set_rollback(True)
    return answer


def leaks(world: World, persona: str, path: str, body: str) -> list[str]:
    """What of the world's secrets this body shows to a persona who may not see it."""
    on_admin = path.startswith("/admin/")
    return [secret.label for secret in world.secrets
            if persona not in secret.allowed and not (secret.admin and on_admin and persona in HOSTS)
            and not secret.pattern.search(path)  # an answer may repeat what its request said (an invite link)
            and secret.pattern.search(body)]


def as_missing(body: str, *names: object) -> str:
    """A body with the names of the objects asked for, and the per-request CSRF tokens, blanked out."""
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken"', body)
    for name in names:
        body = re.sub(rf"\b{re.escape(str(name))}\b", "<ID>", body)
    return body


def file_sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
