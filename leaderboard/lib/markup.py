"""Organizer-written Markdown (challenge and phase descriptions) to HTML that is safe to show.

Markdown (Python-Markdown) renders; nh3 (the Rust `ammonia` sanitizer) then keeps only the tags and
attributes below, so raw HTML or a `javascript:` link in a description cannot run in a visitor's
browser even if an organizer account is misused.
"""

from __future__ import annotations

import markdown
import nh3

TAGS = {"p", "br", "hr", "a", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "h2", "h3", "h4",
        "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}}
SCHEMES = {"http", "https", "mailto"}
EXTENSIONS = ["fenced_code", "tables", "sane_lists"]


def render_markdown(text: str) -> str:
    """Sanitized HTML for a Markdown text; links get rel="noopener nofollow"."""
    html = markdown.markdown(text or "", extensions=EXTENSIONS, output_format="html")
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=SCHEMES, link_rel="noopener nofollow")


def first_paragraph(text: str) -> str:
    """The text up to its first blank line (what a listing shows of a longer description)."""
    return (text or "").strip().replace("\r\n", "\n").split("\n\n", 1)[0]
