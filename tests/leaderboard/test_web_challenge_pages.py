import datetime as dt

from django.utils import timezone

from leaderboard.challenges.models import Challenge
from leaderboard.challenges.services import phase_create


def test_it_lists_published_challenges_with_phase_state(client, phase, challenge):
    phase_create(challenge=challenge, slug="old", name="Old phase", order=1,
                 ends_at=timezone.now() - dt.timedelta(days=1))
    Challenge.objects.create(slug="draft", title="Draft challenge", is_published=False)
    r = client.get("/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "EgoMask" in html
    assert "Test phase" in html and "Old phase" in html
    assert "open</span>" in html and "closed</span>" in html
    assert "Draft challenge" not in html


def test_it_hides_unpublished_challenges_from_participants(client, eve, organizer):
    Challenge.objects.create(slug="draft", title="Draft challenge", is_published=False)
    client.force_login(eve)
    assert client.get("/challenges/draft/").status_code == 404
    client.force_login(organizer)
    assert client.get("/challenges/draft/").status_code == 200


def test_it_shows_the_first_open_phase_with_quota_left(client, alice, phase, challenge, submit):
    phase.max_per_day, phase.max_total = 3, 10
    phase.save()
    phase_create(challenge=challenge, slug="final", name="Final phase", order=5, accepts_submissions=False)
    submit(alice)
    client.force_login(alice)
    r = client.get("/challenges/egomask/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<h2 id="phase-title">\n            Test phase' in html
    assert "2 left today" in html
    assert "9 left for your team" in html
    assert "/challenges/egomask/phases/test/submit/" in html
    for split in ("short", "medium", "long", "overall"):
        assert f"/challenges/egomask/phases/test/leaderboard/{split}/" in html


def test_it_defaults_to_the_last_phase_when_none_is_open(client, phase, challenge):
    phase.accepts_submissions = False
    phase.save()
    phase_create(challenge=challenge, slug="final", name="Final phase", order=5, accepts_submissions=False)
    r = client.get("/challenges/egomask/")
    assert '<h2 id="phase-title">\n            Final phase' in r.content.decode()


def test_it_selects_a_phase_by_tab(client, phase, challenge):
    phase_create(challenge=challenge, slug="final", name="Final phase", order=5, visibility="private",
                 reveal_at=timezone.now() + dt.timedelta(days=3))
    r = client.get("/challenges/egomask/?phase=final")
    html = r.content.decode()
    assert '<h2 id="phase-title">\n            Final phase' in html
    assert "private until" in html
    assert client.get("/challenges/egomask/?phase=nope").status_code == 404


def test_it_offers_the_team_box(client, eve, alice, phase):
    r = client.get("/challenges/egomask/")
    assert b"to create or join a team" in r.content
    assert b"/submit/" not in r.content
    client.force_login(eve)
    r = client.get("/challenges/egomask/")
    assert b'action="/challenges/egomask/teams/"' in r.content
    assert b'action="/teams/join/"' in r.content
    assert b"/submit/" not in r.content
    client.force_login(alice)
    r = client.get("/challenges/egomask/")
    assert b"You submit as" in r.content


def test_it_has_no_phases_yet(client, challenge):
    r = client.get("/challenges/egomask/")
    assert r.status_code == 200
    assert b"no phases yet" in r.content
    assert client.get("/challenges/missing/").status_code == 404


def test_it_lists_the_challenges_at_challenges(client, phase, challenge):
    Challenge.objects.create(slug="draft", title="Draft challenge", is_published=False)
    r = client.get("/challenges/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<a href="/challenges/egomask/">EgoMask</a>' in html and "Test phase" in html
    assert "Draft challenge" not in html


MARKDOWN = "Zip the `short/`, `medium/` and **long** folders.\n\nSee [the paper](https://example.org/p)."


def test_it_renders_descriptions_as_markdown(client, phase, challenge):
    Challenge.objects.filter(pk=challenge.pk).update(description=MARKDOWN)
    phase.description = "Run `egomask validate` first.\n\n<script>alert(1)</script> [x](javascript:alert(1))"
    phase.save()
    home = client.get("/").content.decode()
    assert "<code>short/</code>" in home and "<strong>long</strong>" in home
    assert "`" not in home.split('class="prose"')[1].split("</div>")[0]
    assert "the paper" not in home  # a listing shows the first paragraph only
    page = client.get("/challenges/egomask/").content.decode()
    assert "<code>short/</code>" in page
    assert '<a href="https://example.org/p" rel="noopener nofollow">the paper</a>' in page
    assert "<code>egomask validate</code>" in page
    assert "<script>alert(1)</script>" not in page and "javascript:" not in page
