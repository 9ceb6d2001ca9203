"""{{ text|markdown }}: an organizer's Markdown as safe HTML; {{ text|markdown_summary }}: its first paragraph."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from leaderboard.lib.markup import first_paragraph, render_markdown

register = template.Library()
SUMMARY_WORDS = 60


@register.filter
def markdown(text: str) -> SafeString:
    return mark_safe(render_markdown(text))  # sanitized by nh3 (see leaderboard/lib/markup.py)


@register.filter
def markdown_summary(text: str) -> SafeString:
    html = Truncator(render_markdown(first_paragraph(text))).words(SUMMARY_WORDS, html=True)
    return mark_safe(html)  # truncating keeps the sanitized tags balanced (html=True)
