"""Organizers' announcements: one mail per member of every team of the challenge, opted-out members
excluded, each delivery recorded so that a retried task mails nobody twice; only organizers send them, from
the admin or `manage.py announce`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from leaderboard.challenges.models import Challenge, Host
from leaderboard.errors import ApplicationError, Conflict, NotAllowed
from leaderboard.notifications import services
from leaderboard.notifications.models import Announcement, Delivery, Preferences
from leaderboard.notifications.services import SEND_ANNOUNCEMENT
from leaderboard.notifications.tasks import send_announcement

from .conftest import make_user
from .mailkit import FLAKY, FlakySMTPBackend, mail_tasks_run

BODY = "The **test phase** closes on Friday.\n\n<script>alert(1)</script>[more](javascript:alert(2))"


@pytest.fixture
def members(alice, bob, carol):
    return [alice, bob, carol]  # Team A (alice, bob) and Team C (carol); eve is in no team


def announce(challenge, organizer, capture):  # type: ignore[no-untyped-def]
    """Write and send an announcement as the organizer, running the task it queues."""
    with mail_tasks_run() as sent, capture(execute=True):
        announcement = services.announcement_create(challenge=challenge, user=organizer, subject="Deadline",
                                                    body=BODY)
        services.announcement_send(announcement=announcement, user=organizer)
    assert sent == [(SEND_ANNOUNCEMENT, (announcement.pk,))]
    announcement.refresh_from_db()
    return announcement


def test_it_mails_each_member_separately(challenge, organizer, members, eve, django_capture_on_commit_callbacks):
    announcement = announce(challenge, organizer, django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org", "carol@example.org"]
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mail.outbox)  # nobody sees another address
    assert (announcement.recipients, announcement.sent_count, announcement.opted_out) == (3, 3, 0)
    assert announcement.sent_at is not None
    message = mail.outbox[0]
    assert message.subject == "[EgoMask] Deadline"
    html = message.alternatives[0][0]
    assert "<strong>test phase</strong>" in html
    assert "<script>" not in html and "javascript:" not in html  # Markdown rendered as safely as on the site
    assert "/unsubscribe/" in message.extra_headers["List-Unsubscribe"]


def test_it_leaves_out_members_who_opted_out(challenge, organizer, members, django_capture_on_commit_callbacks):
    services.preferences_set(user=members[2], submission_mails=True, announcement_mails=False)
    announcement = announce(challenge, organizer, django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org"]
    assert (announcement.recipients, announcement.opted_out) == (2, 1)


def test_it_mails_nobody_twice_when_the_sweep_finishes_a_refused_announcement(challenge, organizer, members,
                                                                              settings):
    settings.EMAIL_BACKEND = FLAKY
    FlakySMTPBackend.reset(fail={2})  # the second recipient's first try fails: the task stops there
    announcement = services.announcement_create(challenge=challenge, user=organizer, subject="S", body="B")
    with mail_tasks_run():
        services.announcement_send(announcement=announcement, user=organizer)
        send_announcement.apply(args=(announcement.pk,))  # as the worker runs the queued task
    assert len(mail.outbox) == 1 and Announcement.objects.get(pk=announcement.pk).sent_at is None
    later = timezone.now() + dt.timedelta(seconds=settings.MAIL_RETRY_SECONDS + 1)
    assert services.mail_retry_pending(now=later) == 2  # the sweep sends the other two
    send_announcement.apply(args=(announcement.pk,))  # and a redelivered message on top sends nobody
    assert services.mail_retry_pending(now=later) == 0  # delivered: the sweep leaves it alone
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org", "carol@example.org"]
    assert Delivery.objects.filter(announcement=announcement).count() == 3
    assert FlakySMTPBackend.tries == 4


def test_it_refuses_a_participant(challenge, alice, members):
    with pytest.raises(NotAllowed, match="Only the organizers"):
        services.announcement_create(challenge=challenge, user=alice, subject="Hi", body="Spam")
    assert not Announcement.objects.exists()


def test_it_refuses_to_send_one_twice(challenge, organizer, members, django_capture_on_commit_callbacks):
    announcement = services.announcement_create(challenge=challenge, user=organizer, subject="S", body="B")
    with mail_tasks_run() as sent, django_capture_on_commit_callbacks(execute=True):
        services.announcement_send(announcement=announcement, user=organizer)
        with pytest.raises(Conflict, match="was sent already"):
            services.announcement_send(announcement=announcement, user=organizer)
    assert len(sent) == 1


@pytest.mark.parametrize(("subject", "body", "field"), [("", "B", "subject"), ("Two\nlines", "B", "subject"),
                                                        ("S" * 201, "B", "subject"), ("S", "  ", "body")])
def test_it_names_the_field_that_is_wrong(challenge, organizer, subject, body, field):
    with pytest.raises(ApplicationError) as refused:
        services.announcement_create(challenge=challenge, user=organizer, subject=subject, body=body)
    assert refused.value.detail == {"field": field}


def test_the_command_sends_as_an_organizer(challenge, organizer, members, tmp_path, capsys,
                                          django_capture_on_commit_callbacks):
    body = tmp_path / "body.md"
    body.write_text("Hello **all**.")
    with mail_tasks_run(), django_capture_on_commit_callbacks(execute=True):
        call_command("announce", "--challenge", challenge.slug, "--subject", "Welcome", "--body-file", str(body),
                     "--as", organizer.username)
    assert "queued for 3 members" in capsys.readouterr().out
    assert len(mail.outbox) == 3


def test_the_command_s_dry_run_lists_the_recipients_and_sends_nothing(challenge, organizer, members, tmp_path,
                                                                       capsys):
    Preferences.objects.create(user=members[1], announcement_mails=False)
    body = tmp_path / "body.md"
    body.write_text("Hello.")
    with mail_tasks_run() as sent:
        call_command("announce", "--challenge", challenge.slug, "--subject", "Welcome", "--body-file", str(body),
                     "--dry-run")
    out = capsys.readouterr().out
    assert "Would send 'Welcome' to 2 members" in out and "(1 opted out)" in out
    assert "alice <alice@example.org>" in out and "bob" not in out
    assert (sent, mail.outbox, Announcement.objects.count()) == ([], [], 0)


@pytest.mark.parametrize(("args", "message"), [
    (["--as", "alice"], "Only the organizers of 'EgoMask' may send it announcements."),
    (["--as", "nobody"], "There is no user 'nobody'."),
    (["--challenge", "nope"], "There is no challenge 'nope'."),
    (["--body-file", "/nonexistent/body.md"], "--body-file /nonexistent/body.md: no such file."),
])
def test_the_command_says_what_is_wrong(challenge, organizer, members, tmp_path, args, message):
    body = tmp_path / "body.md"
    body.write_text("Hello.")
    base = {"--challenge": challenge.slug, "--subject": "S", "--body-file": str(body)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    with pytest.raises(CommandError, match="^" + message.replace(".", r"\.").replace("(", r"\(") + "$"):
        call_command("announce", *[item for pair in base.items() for item in pair], *args[2:])
    assert not Announcement.objects.exists()


def test_the_admin_writes_one_and_its_action_sends_it(client, challenge, organizer, members,
                                                      django_capture_on_commit_callbacks):
    client.force_login(organizer)
    r = client.post("/admin/notifications/announcement/add/", {"challenge": challenge.pk, "subject": "From the admin",
                                                               "body": "Hello *all*."})
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    announcement = Announcement.objects.get()
    assert (announcement.created_by, announcement.queued_at) == (organizer, None)
    assert mail.outbox == []
    with mail_tasks_run(), django_capture_on_commit_callbacks(execute=True):
        r = client.post("/admin/notifications/announcement/", {"action": "send",
                                                               "_selected_action": [announcement.pk]})
    assert r.status_code == 302
    assert len(mail.outbox) == 3
    announcement.refresh_from_db()
    assert announcement.sent_count == 3


@pytest.mark.parametrize(("role", "allowed"), [(Host.Role.OWNER, True), (Host.Role.ORGANIZER, True),
                                               (Host.Role.VIEWER, False)])
def test_a_host_announces_as_their_role_allows(challenge, members, role, allowed):
    host = make_user(f"host-{role}")
    Host.objects.create(challenge=challenge, user=host, role=role)
    if allowed:
        assert services.announcement_create(challenge=challenge, user=host, subject="S", body="B").pk
    else:
        with pytest.raises(NotAllowed):
            services.announcement_create(challenge=challenge, user=host, subject="S", body="B")


def test_a_host_of_another_challenge_is_refused(challenge, members):
    other = Challenge.objects.create(slug="other", title="Other")
    host = make_user("other-host")
    Host.objects.create(challenge=other, user=host, role=Host.Role.OWNER)
    with pytest.raises(NotAllowed):
        services.announcement_create(challenge=challenge, user=host, subject="S", body="B")
    assert services.announcement_create(challenge=other, user=host, subject="S", body="B").pk
