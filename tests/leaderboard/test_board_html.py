"""The board page's rows (board_html): what people typed is escaped, only web links are links, numbers read
as the templates' floatformat:2 shows them, and every kind of row says what it is."""

from __future__ import annotations

import datetime as dt

from django.template.defaultfilters import floatformat
from hypothesis import given
from hypothesis import strategies as st

from leaderboard.submissions.board_html import board_rows_html, mark_team, two_decimals
from leaderboard.submissions.selectors import LeaderboardRow

WHEN = dt.datetime(2030, 3, 1, 9, 30, tzinfo=dt.UTC)
SCORES = {"T_recall": 61.0, "IoU_all": 6.365, "IoU_gold": 55.5, "IoU_gold_pred": 70.125}


def team_row(**fields) -> LeaderboardRow:
    values = {"rank": 1, "team": "Team A", "team_id": 7, "method": "Net", "method_url": "", "code_url": "",
              "is_baseline": False, "scores": SCORES, "n_expressions": 9, "submitted_at": WHEN, "submission_id": 42,
              "baseline": None, **fields}
    return LeaderboardRow(**values)


def test_it_escapes_what_people_typed():
    row = team_row(team='<b>"Team" & co</b>', method="<script>alert(1)</script>",
                   method_url='https://example.org/?a=1&b="x"')
    html = board_rows_html([row], metric="IoU_gold_pred")
    assert "<b>" not in html and "<script>" not in html
    assert "&lt;b&gt;&quot;Team&quot; &amp; co&lt;/b&gt;" in html
    assert '<a href="https://example.org/?a=1&amp;b=&quot;x&quot;" rel="noopener nofollow">&lt;script&gt;' in html


def test_it_links_only_web_urls():
    html = board_rows_html([team_row(method_url="javascript:alert(1)", code_url="https://example.org/code")],
                           metric="IoU_gold_pred")
    assert "javascript:" not in html
    assert '<a class="small-link" href="https://example.org/code" rel="noopener nofollow">code</a>' in html


def test_it_writes_a_team_row_and_marks_the_viewers():
    html = board_rows_html([team_row(), team_row(rank=2, team="Team <7>", team_id=8, submission_id=43)],
                           metric="IoU_all")
    assert html.startswith('<tr class="" data-team="7"><td class="num rank">1</td><td>Team A</td>')
    marked = mark_team(html, 8).split("\n")
    assert marked[0] == html.split("\n")[0]
    assert marked[1].startswith('<tr class="mine" data-team="8"><td class="num rank">2</td>'
                                '<td>Team &lt;7&gt; <span class="badge">your team</span></td><td>Net</td>')
    assert mark_team(html, 9) == mark_team(html, None) == html
    # The four metrics with two decimals (half up, as floatformat), the sorted one marked.
    assert ('<td class="num">61.00</td><td class="num sorted">6.37</td><td class="num">55.50</td>'
            '<td class="num">70.13</td>') in html
    assert '<a href="/submissions/42/"><time datetime="2030-03-01T09:30:00+00:00">2030-03-01</time></a>' in html


def test_it_says_where_a_baseline_comes_from():
    runner = team_row(rank=None, team=None, team_id=None, is_baseline=True,
                      baseline={"kind": "runner", "runner": "colour", "version": "1.0.0", "run": 5})
    uploaded = team_row(rank=None, team=None, team_id=None, is_baseline=True,
                        baseline={"kind": "uploaded", "runner": None, "version": None})
    reported = team_row(rank=None, team=None, team_id=None, is_baseline=True, method="Paper net",
                        method_url="https://arxiv.org/abs/1", scores={"T_recall": None, "IoU_all": None,
                                                                     "IoU_gold": None, "IoU_gold_pred": 24.8},
                        n_expressions=None, submitted_at=None, submission_id=None,
                        baseline={"kind": "reported", "runner": None, "version": None,
                                  "source": "https://arxiv.org/abs/1", "citation": ""})
    first, second, third = board_rows_html([runner, uploaded, reported], metric="IoU_gold_pred").split("\n")
    assert first.startswith('<tr class="baseline"><td class="num rank"><span class="muted" aria-label="no rank">')
    assert ('<a class="small-link provenance" href="/baselines/runs/5/" title="produced on this server by the '
            'reference runner colour 1.0.0">runner colour 1.0.0</a>') in first
    assert "uploaded by the organizers" in second
    assert third.startswith('<tr class="baseline reported">') and ">reported (paper)</span>" in third
    assert third.count('<td class="num">–</td>') == 3 and '<td class="num sorted">24.80</td>' in third
    assert third.endswith('<td><a href="https://arxiv.org/abs/1" rel="noopener nofollow">source</a></td>'
                          '<td class="pick"></td></tr>')  # a reported row has no submission to compare


@given(st.one_of(st.floats(min_value=0, max_value=100),
                 st.integers(min_value=0, max_value=100_000).map(lambda n: n / 1000),  # the ..5 cases
                 st.floats(allow_nan=True, allow_infinity=True)))
def test_it_shows_numbers_as_floatformat_does(value):
    assert two_decimals(value) == floatformat(value, 2)
