import datetime as dt
import re

import pytest
from django.utils import timezone

URL = "/challenges/egomask/phases/test/leaderboard/overall/"


@pytest.fixture
def board(alice, carol, organizer, submit, score):
    """Team A (noisy) leads on IoU_gold_pred, Team C (empty) on IoU_all; a good baseline tops both."""
    score(submit(alice, quality="noisy", method_name="Noisy net", method_url="https://example.org/paper"))
    score(submit(carol, quality="empty", method_name="Empty net"))
    score(submit(organizer, quality="good", method_name="Reference", is_baseline=True))


def _methods(html: str) -> list[str]:
    return re.findall(r"Noisy net|Empty net|Reference", html)


def test_it_shows_ranked_rows_and_a_baseline_badge(client, board):
    r = client.get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert _methods(html) == ["Reference", "Noisy net", "Empty net"]
    assert '<span class="badge baseline">baseline</span>' in html
    assert re.findall(r'<td class="num rank">(\d+)(?:<span class="tie"|</td>)', html) == ["1", "2"]
    assert '<a href="https://example.org/paper" rel="noopener nofollow">Noisy net</a>' in html
    assert 'aria-sort="descending"' in html
    assert re.search(r'aria-sort="descending">\s*<a href="\?metric=IoU_gold_pred"', html)
    assert "6.37" in html  # two decimals


def test_it_sorts_by_another_metric(client, board):
    r = client.get(URL + "?metric=IoU_all")
    html = r.content.decode()
    assert _methods(html) == ["Reference", "Empty net", "Noisy net"]
    assert re.search(r'aria-sort="descending">\s*<a href="\?metric=IoU_all"', html)
    # the split tabs keep the sort
    assert "/challenges/egomask/phases/test/leaderboard/short/?metric=IoU_all" in html


def test_it_ignores_an_unknown_metric(client, board):
    r = client.get(URL + "?metric=bogus")
    assert r.status_code == 200
    assert _methods(r.content.decode()) == ["Reference", "Noisy net", "Empty net"]


def test_it_has_a_board_per_split(client, board):
    for split in ("short", "medium", "long"):
        r = client.get(f"/challenges/egomask/phases/test/leaderboard/{split}/")
        assert r.status_code == 200
        assert "Noisy net" in r.content.decode()
    assert client.get("/challenges/egomask/phases/test/leaderboard/huge/").status_code == 404
    assert client.get("/challenges/egomask/phases/nope/leaderboard/short/").status_code == 404


def test_it_hides_a_private_board_until_the_reveal(client, board, phase, eve, organizer):
    phase.visibility = "private"
    phase.reveal_at = timezone.now() + dt.timedelta(days=2)
    phase.save()
    client.force_login(eve)
    r = client.get(URL)
    assert r.status_code == 200
    assert b"This leaderboard is private until" in r.content
    assert b"Noisy net" not in r.content
    client.force_login(organizer)
    r = client.get(URL)
    assert b"Noisy net" in r.content
    assert b"you are an organizer" in r.content


def test_it_says_when_there_is_nothing_yet(client, phase):
    r = client.get(URL)
    assert r.status_code == 200
    assert b"No scored submissions yet." in r.content


def test_it_links_only_web_urls(client, alice, submit, score):
    # The service refuses other schemes; the template must still not link one that got in
    # another way (older rows, a direct database edit).
    submission = score(submit(alice, method_name="Sneaky", code_url="https://example.org/c"))
    type(submission).objects.filter(pk=submission.pk).update(method_url="javascript:alert(1)")
    html = client.get(URL).content.decode()
    assert "javascript:" not in html
    assert '<a class="small-link" href="https://example.org/c"' in html
