"""Accounts on django-allauth: sign-up with a verification mail, login by user name or e-mail address, the
password pages, the old addresses, and the rate limits against guessing."""

from __future__ import annotations

import re

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from .conftest import PASSWORD

NEW = {"username": "newbie", "email": "newbie@example.org", "password1": "a-long-new-password-9",
       "password2": "a-long-new-password-9"}


def logged_in_as(client) -> str | None:  # type: ignore[no-untyped-def]
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id).username if user_id else None


def test_it_mails_a_verification_link_on_sign_up_and_confirms_the_address(client, db, mailoutbox):
    r = client.post("/signup/", NEW)
    assert r.status_code == 302
    address = EmailAddress.objects.get(email="newbie@example.org")
    assert (address.user.username, address.verified) == ("newbie", False)
    (mail,) = mailoutbox
    assert mail.to == ["newbie@example.org"]
    assert mail.subject.startswith("[EgoMask] ")
    link = re.search(r"http://testserver(/account/confirm-email/[^/\s]+/)", mail.body).group(1)

    page = client.get(link)
    assert page.status_code == 200
    assert b"newbie@example.org" in page.content
    assert not EmailAddress.objects.get(pk=address.pk).verified  # a GET (a link checker) confirms nothing
    r = client.post(link)
    assert r.status_code == 302
    assert EmailAddress.objects.get(pk=address.pk).verified


def test_it_logs_in_by_user_name_or_by_e_mail_address(client, eve):
    r = client.post("/login/", {"login": "eve", "password": PASSWORD})
    assert (r.status_code, logged_in_as(client)) == (302, "eve")
    client.post("/logout/")
    assert logged_in_as(client) is None
    r = client.post("/login/", {"login": "EVE@example.org", "password": PASSWORD})
    assert (r.status_code, logged_in_as(client)) == (302, "eve")


def test_it_answers_429_after_five_failed_logins_for_one_account(client, eve):
    for _ in range(5):
        r = client.post("/login/", {"login": "eve", "password": "guess"})
        assert r.status_code == 200
        assert b"are not correct" in r.content
    r = client.post("/login/", {"login": "eve", "password": PASSWORD})  # even the right one, for a while
    assert r.status_code == 429
    assert b"Too many failed login attempts" in r.content
    assert logged_in_as(client) is None


def test_it_limits_sign_ups_per_address(client, db, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "2/m/ip"}
    for n in range(2):
        r = client.post("/signup/", {**NEW, "username": f"user{n}", "email": f"user{n}@example.org"})
        assert r.status_code == 302
        client.post("/logout/")
    r = client.post("/signup/", {**NEW, "username": "user3", "email": "user3@example.org"})
    assert r.status_code == 429
    assert b"Too many attempts" in r.content
    assert not get_user_model().objects.filter(username="user3").exists()


def test_it_limits_invite_codes_per_user(client, alice, eve, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "team_join": "3/h/user,100/h/ip"}
    client.force_login(eve)
    assert client.get("/teams/join/guess-1/").status_code == 404
    assert client.post("/teams/join/", {"code": "guess-2"}).status_code == 302  # "not a valid code"
    assert client.get("/teams/join/guess-3/").status_code == 404
    code = alice.memberships.get().team.invite_code
    r = client.get(f"/teams/join/{code}/")  # the right code, once the guesses are used up
    assert r.status_code == 429
    assert b"You tried this too many times" in r.content
    assert client.post("/teams/join/", {"code": code}).status_code == 429
    assert not eve.memberships.exists()


def test_it_limits_invite_codes_per_address_across_users(client, alice, eve, carol, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "team_join": "100/h/user,2/h/ip"}
    client.force_login(eve)
    assert client.get("/teams/join/guess-1/").status_code == 404
    assert client.get("/teams/join/guess-2/").status_code == 404
    client.force_login(carol)  # another account from the same address
    assert client.get("/teams/join/guess-3/").status_code == 429


def test_it_changes_the_password(client, eve):
    client.force_login(eve)
    page = client.get("/account/password/change/")
    assert page.status_code == 200
    assert b"site-header" in page.content  # the site's own layout, not allauth's bare one
    r = client.post("/account/password/change/", {"oldpassword": PASSWORD, "password1": "a-brand-new-pass-77",
                                                  "password2": "a-brand-new-pass-77"})
    assert r.status_code == 302
    eve.refresh_from_db()
    assert eve.check_password("a-brand-new-pass-77")


def test_it_adds_an_address_and_sends_it_a_verification_mail(client, eve, mailoutbox):
    client.force_login(eve)
    page = client.get("/account/email/")
    assert page.status_code == 200
    assert b"eve@example.org" in page.content
    r = client.post("/account/email/", {"action_add": "", "email": "eve.work@example.org"})
    assert r.status_code == 302
    assert EmailAddress.objects.filter(user=eve, email="eve.work@example.org", verified=False).exists()
    assert [m.to for m in mailoutbox] == [["eve.work@example.org"]]


def test_it_keeps_the_old_addresses_and_sends_the_unknown_to_the_login_page(client, db):
    assert client.get("/login/").status_code == 200
    assert client.get("/signup/").status_code == 200
    r = client.get("/teams/")
    assert (r.status_code, r.url) == (302, "/login/?next=/teams/")
    login = client.get("/login/").content.decode()
    assert 'href="/account/password/reset/"' in login
