"""A markdown report as one self-contained HTML page: tables rendered, plots carried inside as data URIs."""

from __future__ import annotations

import base64
import html
from pathlib import Path

__all__ = ["html_report"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
          "table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;"
          "padding:3px 7px;text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}"
          "img{max-width:100%}pre{background:#f5f5f5;padding:.7em;overflow-x:auto}code{font-size:12px}")


def html_report(markdown: str, folder: Path) -> str:
    """The report's markdown as one self-contained HTML page (markdown-it-py; plots inlined as data URIs)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    for token in tokens:
        for child in token.children or []:
            src = child.attrGet("src") if child.type == "image" else None
            if src and (folder / str(src)).is_file():  # a plot next to the report: carried inside the page
                data = base64.b64encode((folder / str(src)).read_bytes()).decode()
                child.attrSet("src", f"data:image/png;base64,{data}")
    body = md.renderer.render(tokens, md.options, {})
    first = markdown.splitlines()[0] if markdown.strip() else ""
    title = html.escape(first.lstrip("# ")) if first else "contrec report"
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>{_STYLE}</style>"
            f"</head><body>\n{body}</body></html>\n")
