"""A participant's mail choices: the settings page, and the unsubscribe link every mail carries (signed,
without a login, one-click for mail programs)."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from leaderboard.notifications import selectors, services
from leaderboard.notifications.models import Preferences
from leaderboard.notifications.tasks import send_submission_mail


def test_it_has_both_mails_on_until_the_user_chooses(alice):
    assert selectors.wants(user=alice, topic="submissions") and selectors.wants(user=alice, topic="announcements")


def test_it_saves_the_choices_on_the_settings_page(client, alice):
    client.force_login(alice)
    page = client.get("/account/notifications/").content.decode()
    assert 'name="submission_mails"' in page and 'checked' in page
    r = client.post("/account/notifications/", {"announcement_mails": "on"})
    assert r.status_code == 302
    prefs = Preferences.objects.get(user=alice)
    assert (prefs.submission_mails, prefs.announcement_mails) == (False, True)


def test_it_unsubscribes_from_the_link_in_a_mail_without_a_login(alice, submit, score):
    submission = score(submit(alice))
    send_submission_mail.apply(args=(submission.pk, "finished"))
    link = re.search(r"<http://[^/]+(/unsubscribe/[^/]+/)>", mail.outbox[0].extra_headers["List-Unsubscribe"]).group(1)
    assert link in mail.outbox[0].body
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(link)
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    assert selectors.wants(user=alice, topic="submissions")  # opening the link (a preview, a scanner) changes nothing
    r = browser.post(link, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and b"Unsubscribed" in r.content  # RFC 8058: a mail program's POST, no CSRF token
    assert not selectors.wants(user=alice, topic="submissions")
    assert selectors.wants(user=alice, topic="announcements")  # the other topic stays as it was


def test_it_refuses_a_forged_or_cut_link(client, alice):
    token = selectors.unsubscribe_token(user=alice, topic="announcements")
    for bad in (token[:-3], token.replace(":", ";", 1), "nonsense"):
        r = client.post(f"/unsubscribe/{bad}/")
        assert r.status_code == 404
        assert b"This unsubscribe link is not valid" in r.content
    assert selectors.wants(user=alice, topic="announcements")


def test_it_turns_off_only_the_named_user_s_mail(alice, bob):
    services.unsubscribe(token=selectors.unsubscribe_token(user=alice, topic="announcements"))
    assert not selectors.wants(user=alice, topic="announcements")
    assert selectors.wants(user=bob, topic="announcements")
