"""CSRF on every form and on every session-authenticated API write.

Every HTML page of the authorization table is opened as every persona who can open it; each POST form
must carry a CSRF token, and posting it without the token is refused (with it, it is not). The API refuses
a session-authenticated unsafe call without the token; token authentication needs none by design (a
cross-site page cannot set the Authorization header)."""

from __future__ import annotations

from urllib.parse import urljoin

from bs4 import BeautifulSoup
from django.db import transaction
from django.test import Client

from .authz_table import table
from .authz_world import *  # noqa: F403  (its fixture)
from .authz_world import CSRF_SECRET, PERSONAS, World, client_for, send

TABLE = table()
CSRF_PAGE = b"CSRF verification failed"  # Django's answer to a form posted without its token
# The one form that takes no CSRF token by design: a mail program's one-click unsubscribe (RFC 8058) POSTs
# without a session or a token; the signed token in its URL is the credential, and it acts on no session.
NO_CSRF_BY_DESIGN = ("/unsubscribe/",)


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _forms(html: str, page: str) -> list[tuple[str, dict[str, str], str | None]]:
    """(action, fields, token) of each POST form of a page; token is None when the form has none."""
    found = []
    for form in BeautifulSoup(html, "html.parser").find_all("form"):
        if (form.get("method") or "get").lower() != "post":
            continue
        fields = {}
        for item in form.find_all(["input", "select", "textarea"]):
            name, kind = item.get("name"), (item.get("type") or "").lower()
            unchecked = kind in ("checkbox", "radio") and not item.has_attr("checked")
            if not name or kind in ("file", "submit") or unchecked:
                continue
            if item.name == "select":
                chosen = item.find("option", selected=True) or item.find("option")
                fields[name] = chosen.get("value", "") if chosen else ""
            else:
                fields[name] = item.get("value", item.get_text() if item.name == "textarea" else "")
        token = fields.pop("csrfmiddlewaretoken", None)
        found.append((urljoin(page, form.get("action") or page), fields, token))
    return found


def _post(world: World, persona: str, action: str, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    with transaction.atomic():
        response = client_for(world, persona, api=False).post(action, fields)
        transaction.set_rollback(True)
    return response


def test_every_post_form_carries_a_csrf_token_and_is_refused_without_it(world):
    pages = sorted({world.path(p.path) for probes in TABLE.values() for p in probes
                    if p.method == "GET" and not _is_api(p.path)})
    forms: dict[tuple[str, str], tuple[str, dict[str, str], str | None]] = {}
    for persona in PERSONAS:
        client = client_for(world, persona, api=False)
        for page in pages:
            response = client.get(page)
            if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
                for action, fields, token in _forms(response.content.decode(), page):
                    forms.setdefault((persona, action), (page, fields, token))

    untokened = [f"{page} as {persona}: form to {action}" for (persona, action), (page, _, token) in forms.items()
                 if not token]
    assert not untokened, "\n".join(untokened)
    # The forms people use, by who uses them (a page that lost its form would pass the checks below).
    actions = {(persona, action.split("?")[0]) for persona, action in forms}
    for persona, action in [("anonymous", "/login/"), ("anonymous", "/signup/"), ("owner", "/logout/"),
                            ("outsider", "/challenges/egomask/teams/"), ("outsider", "/teams/join/"),
                            ("owner", world.path("/teams/{team_a}/leave/")),
                            ("owner", world.path("/teams/{team_a}/invite-code/")),
                            ("owner", "/challenges/egomask/phases/test/submit/"),
                            ("owner", world.path("/submissions/{public}/method/")),
                            ("owner", world.path("/submissions/{public}/public/")),
                            ("owner", world.path("/submissions/{queued}/cancel/")),
                            ("outsider", world.path("/teams/join/{invite_a}/")),
                            ("owner", "/account/api-token/rotate/"), ("owner", "/account/api-token/revoke/"),
                            ("organizer", "/admin/submissions/submission/"),
                            ("organizer", world.path("/admin/challenges/phase/{phase}/change/"))]:
        assert (persona, action) in actions, (persona, action)

    for (persona, action), (page, fields, token) in sorted(forms.items()):
        refused = _post(world, persona, action, fields)
        if action.startswith(NO_CSRF_BY_DESIGN):
            assert refused.status_code == 200, f"{page} as {persona}: {action}"
            continue
        assert (refused.status_code, CSRF_PAGE in refused.content) == (403, True), f"{page} as {persona}: {action}"
        sent = _post(world, persona, action, {**fields, "csrfmiddlewaretoken": token})
        assert CSRF_PAGE not in sent.content, f"{page} as {persona}: {action} refused with its token"


def _session_client(world: World, persona: str, token: bool) -> Client:
    client = client_for(world, persona, api=False)  # logged in, with a CSRF cookie, no Authorization header
    if token:
        client.defaults["HTTP_X_CSRFTOKEN"] = CSRF_SECRET
    return client


def _csrf_refused(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 403 and "CSRF" in response.json().get("error", "")


def test_session_authenticated_api_writes_need_the_csrf_token(world):
    calls = [(route, p) for route, probes in TABLE.items() for p in probes
             if _is_api(p.path) and p.method not in ("GET", "HEAD", "OPTIONS")]
    free = set()
    for route, item in calls:
        path = world.path(item.path)
        for with_token in (False, True):
            with transaction.atomic():
                if item.prepare:
                    item.prepare(world, world.user("owner"))
                data = item.data(world, "owner") if callable(item.data) else item.data
                response = send(_session_client(world, "owner", with_token), item.method, path, data, item.kind)
                transaction.set_rollback(True)
            refused = response.get("Content-Type", "").startswith("application/json") and _csrf_refused(response)
            if with_token:
                assert not refused, f"{item.method} {path} refused with its CSRF token"
            elif not refused:
                free.add(f"{item.method} {route}")
    # No session is read there: the token is traded for a password; a part URL is signed (like S3's).
    assert free == {"POST api-token", "PUT api-upload-part"}


def test_token_authenticated_api_writes_need_no_csrf_token(world):
    client = client_for(world, "owner", api=True)  # enforces CSRF checks, sends no CSRF cookie or header
    assert "csrftoken" not in client.cookies
    started = client.post(world.path("/api/v1/phases/{phase}/uploads/"), {"filename": "x.zip", "size": 10},
                          content_type="application/json")
    assert started.status_code == 201, started.content
    renamed = client.patch(world.path("/api/v1/submissions/{public}/"), {"method_name": "Renamed by token"},
                           content_type="application/json")
    assert (renamed.status_code, renamed.json()["method_name"]) == (200, "Renamed by token")
