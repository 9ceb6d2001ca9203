"""A forgotten password, in a real browser: ask for the reset, read the mail where the demo's file backend
writes it, follow its link, choose a new password and log in with it."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from playwright.sync_api import expect

from .conftest import PASSWORD

NEW_PASSWORD = "a-fresh-browser-password-8"


def test_it_resets_a_forgotten_password_through_the_mailed_link(live_server, page, eve, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")

    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("eve@example.org")
    page.get_by_role("button", name="Send the reset link").click()
    expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()

    (written,) = (tmp_path / "mail").iterdir()  # one file per message the backend wrote
    mail = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert mail["To"] == "eve@example.org"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    link = re.search(rf"{re.escape(live_server.url)}/account/password/reset/key/\S+/", body).group(0)

    page.goto(link)
    page.get_by_label(re.compile(r"^New Password:?$")).fill(NEW_PASSWORD)
    page.get_by_label("New Password (again)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username or e-mail").fill("eve")
    page.get_by_label("Password").fill(PASSWORD)  # the old one no longer works
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not correct")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".nav-user")).to_contain_text("eve")

    page.goto(link)  # a used link says so
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
