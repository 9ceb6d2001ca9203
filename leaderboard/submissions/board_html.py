"""The rows of a board's table on its page, as HTML (the page around them is a template).

Written here, not in a template, for speed: a board has up to a thousand rows and they are rendered
again whenever the board changes (every few seconds while a phase is busy, in every web process).
Django's template engine takes about 80 ms for a thousand rows; this takes a tenth of that, which is
what keeps the page's slowest answers short. The rows are the same for every viewer, so one rendering
is cached per board; `mark_team` then marks the viewer's team's row. Every value that comes from a
person (team and method names, links, runner names) is escaped; links are http(s) only (`link`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal

from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from scoring import METRICS

from .selectors import LeaderboardRow

BOARD_ROWS = "<!-- the board's rows -->"  # where the page template has the rows put (views.leaderboard)
_CENT = Decimal("0.01")
_PLACEHOLDER = 4815162342
_NO_RANK = '<span class="muted" aria-label="no rank">–</span>'
_REPORTED = ('<span class="badge baseline reported" title="numbers quoted from the paper, not reproduced here; never '
             'ranked">reported (paper)</span>')
_UPLOADED = ('<span class="badge baseline">baseline</span> '
             '<span class="muted small provenance">uploaded by the organizers</span>')
_MINE = ' <span class="badge">your team</span>'
_RESCORING = (' <span class="badge rescoring" title="being scored again (a new ground truth or scorer): these are '
              'its previous scores until the new ones are in">rescoring</span>')


def link(url: str) -> str:
    """The URL if it is a web link; other schemes (javascript:, data:) are never rendered as links."""
    return url if url.lower().startswith(("https://", "http://")) else ""


def two_decimals(value: float) -> str:
    """What the templates' `floatformat:2` shows (half up on the number's decimal digits), at a tenth of its cost
    for the numbers a board has (percentages); any other number is left to floatformat itself."""
    digits = repr(value)
    if not 0 <= value < 1e9 or "e" in digits:  # negative, huge, tiny, NaN
        return floatformat(value, 2)
    return str(Decimal(digits).quantize(_CENT, rounding=ROUND_HALF_UP))


def _href(name: str) -> Callable[[int], str]:
    """id -> the URL of route `name` for that id, reversed once rather than once per row."""
    pattern = reverse(name, args=[_PLACEHOLDER])
    return lambda pk: pattern.replace(str(_PLACEHOLDER), str(pk))


def board_rows_html(rows: Iterable[LeaderboardRow], *, metric: str) -> str:
    """The <tr> rows of a board sorted by `metric`, the same for every viewer (mark_team marks theirs)."""
    submission_href, run_href = _href("submission"), _href("baseline_run")
    sort_index = METRICS.index(metric)
    return "\n".join(_row(row, sort_index, submission_href, run_href) for row in rows)


def mark_team(rows_html: str, team_id: int | None) -> str:
    """board_rows_html's rows with the row of the viewer's team marked as theirs (a team has one row)."""
    if team_id is None:
        return rows_html
    # A team row starts so, and its name cell, escaped, holds no tag: the first </td> after it ends it.
    return re.sub(rf'<tr class="" data-team="{team_id}">(<td class="num rank">.*?</td><td>.*?)</td>',
                  lambda found: f'<tr class="mine" data-team="{team_id}">{found.group(1)}{_MINE}</td>', rows_html,
                  count=1)


def _row(row: LeaderboardRow, sort_index: int, submission_href: Callable[[int], str],
         run_href: Callable[[int], str]) -> str:
    kind = row.baseline.get("kind") if row.baseline else None
    classes = " ".join(name for name, on in (("baseline", row.is_baseline), ("reported", kind == "reported")) if on)
    team = f' data-team="{row.team_id}"' if row.team_id is not None and not row.is_baseline else ""
    if kind == "reported":
        who = _REPORTED
    elif row.is_baseline and kind == "runner":
        runner = escape(f"{row.baseline['runner']} {row.baseline['version']}")
        who = (f'<span class="badge baseline">baseline</span> <a class="small-link provenance" '
               f'href="{run_href(row.baseline["run"])}" title="produced on this server by the reference runner '
               f'{runner}">runner {runner}</a>')
    elif row.is_baseline:
        who = _UPLOADED
    else:
        who = escape(row.team or "")
    method_href, code_href = link(row.method_url), link(row.code_url)
    method = escape(row.method)
    if method_href:
        method = f'<a href="{escape(method_href)}" rel="noopener nofollow">{method}</a>'
    if code_href:
        method += f' <a class="small-link" href="{escape(code_href)}" rel="noopener nofollow">code</a>'
    if row.rescoring:
        method += _RESCORING
    if row.flagged:
        method += ' <span class="badge flagged" title="flagged by the organizers">flagged</span>'
    cells = "".join(
        f'<td class="num{" sorted" if index == sort_index else ""}">'
        f'{"–" if value is None else two_decimals(value)}{_interval(row, METRICS[index])}</td>'
        for index, value in enumerate(row.scores.get(m) for m in METRICS))
    if row.submission_id and row.submitted_at:
        when = timezone.localtime(row.submitted_at)
        submitted = (f'<a href="{submission_href(row.submission_id)}"><time datetime="{when.isoformat()}">'
                     f'{when:%Y-%m-%d}</time></a>')
    else:
        submitted = f'<a href="{escape(method_href)}" rel="noopener nofollow">source</a>' if method_href else ""
    rank = row.rank if row.rank else _NO_RANK
    if row.tied_with:
        rank = f'{rank}<span class="tie" title="not distinguishable from these rows by a paired bootstrap test ' \
               f'on the primary metric">statistically tied with {tied_text(row.tied_with)}</span>'
    return (f'<tr class="{classes}"{team}><td class="num rank">{rank}</td><td>{who}</td>'
            f"<td>{method}</td>{cells}<td>{submitted}</td>{_pick(row)}</tr>")


def _pick(row: LeaderboardRow) -> str:
    """The row's box for "Compare selected" (a GET form on the page: views_compare.compare); none for a reported
    row (no submission to compare)."""
    if not row.submission_id:
        return '<td class="pick"></td>'
    return (f'<td class="pick"><input type="checkbox" name="submissions" value="{row.submission_id}" '
            f'form="compare-form" aria-label="compare submission #{row.submission_id}"></td>')


def _interval(row: LeaderboardRow, metric: str) -> str:
    found = (row.ci or {}).get(metric)
    if not found:
        return ""
    low, high = two_decimals(found[0]), two_decimals(found[1])
    return f'<span class="ci" title="95% interval, bootstrap over videos">{low}–{high}</span>'


def tied_text(ranks: tuple[int, ...]) -> str:
    """"#2", "#2, #4" or "#2–#6" (a run of three or more)."""
    if len(ranks) >= 3 and list(ranks) == list(range(ranks[0], ranks[0] + len(ranks))):
        return f"#{ranks[0]}–#{ranks[-1]}"
    return ", ".join(f"#{r}" for r in ranks)
