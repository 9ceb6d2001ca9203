"""Markdown descriptions to safe HTML (framework-free: no database)."""

from leaderboard.lib.markup import first_paragraph, render_markdown


def test_it_renders_inline_code_emphasis_lists_and_links():
    html = render_markdown("Use `egomask eval`, *then* submit:\n\n- one\n- two\n\n[code](https://example.org)")
    assert "<code>egomask eval</code>" in html and "<em>then</em>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert '<a href="https://example.org" rel="noopener nofollow">code</a>' in html


def test_it_removes_scripts_handlers_and_foreign_schemes():
    html = render_markdown('<script>x()</script><img src=x onerror="x()"> [a](javascript:x()) <b onclick="x()">b</b>')
    assert "<script" not in html and "onerror" not in html and "onclick" not in html and "<img" not in html
    assert "javascript:" not in html


def test_it_keeps_fenced_code_and_tables():
    html = render_markdown("```\nshort/video/0/0-1.json\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<pre><code>short/video/0/0-1.json\n</code></pre>" in html
    assert "<td>1</td>" in html


def test_it_takes_the_first_paragraph():
    assert first_paragraph("one\nline\r\n\r\ntwo") == "one\nline"
    assert first_paragraph("") == ""
