"""A report as a list of blocks (headings, paragraphs, tables, images), rendered to Markdown
and to one self-contained HTML file (plots inlined). Tables are drawn by ``tabulate``; every
cell is escaped for the format it goes to, so text from a result can never break a table."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from tabulate import tabulate


class Strong(str):
    """A table cell or phrase to emphasise (bold in both formats)."""


@dataclass
class Document:
    """The blocks of a report, in reading order."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("bullets", items))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A table; a column (but the first) whose cells are all the same carries nothing in
        this study, so it is left out and its one value said once below the table."""
        keep = [0] + [i for i in range(1, len(header)) if len(rows) < 2 or len({str(r[i]) for r in rows}) > 1]
        same = [f"{header[i]} {rows[0][i]}" for i in range(len(header)) if i not in keep]
        self.blocks.append(("table", ([header[i] for i in keep], [[r[i] for i in keep] for r in rows])))
        if same:
            self.paragraph("The same in every row, so left out: " + "; ".join(same) + ".")

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("image", (path, alt)))

    def to_markdown(self) -> str:
        parts = [f"# {self.title}"]
        for kind, content in self.blocks:
            parts.append(_MARKDOWN[kind](content))
        return "\n\n".join(parts) + "\n"

    def to_html(self) -> str:
        body = "\n".join(_HTML[kind](content) for kind, content in self.blocks)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>\n"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )


def escape_markdown(text: str) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def _md_cell(cell: object) -> str:
    text = escape_markdown(str(cell))
    return f"**{text}**" if isinstance(cell, Strong) else text


def _html_cell(cell: object) -> str:
    text = html.escape(str(cell))
    return f"<strong>{text}</strong>" if isinstance(cell, Strong) else text


def _md_table(content: object) -> str:
    header, rows = cast(tuple[list[str], list[list[str]]], content)
    cells = [[_md_cell(c) for c in row] for row in rows]
    return tabulate(cells, [_md_cell(h) for h in header], "github", disable_numparse=True)


def _html_table(content: object) -> str:
    header, rows = cast(tuple[list[str], list[list[str]]], content)
    cells = [[_html_cell(c) for c in row] for row in rows]
    return tabulate(cells, [_html_cell(h) for h in header], "unsafehtml", disable_numparse=True)


def _md_image(content: object) -> str:
    path, alt = cast(tuple[Path, str], content)
    return f"![{escape_markdown(alt)}]({Path(path).name})"


def _html_image(content: object) -> str:
    path, alt = cast(tuple[Path, str], content)
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


_MARKDOWN = {
    "heading": lambda c: "#" * c[0] + " " + c[1],  # type: ignore[index]
    "paragraph": lambda c: f"**{c}**" if isinstance(c, Strong) else str(c),
    "bullets": lambda c: "\n".join(f"- {item}" for item in c),  # type: ignore[attr-defined]
    "table": _md_table,
    "image": _md_image,
}
_HTML = {
    "heading": lambda c: f"<h{c[0]}>{html.escape(c[1])}</h{c[0]}>",  # type: ignore[index]
    "paragraph": lambda c: (
        f"<p><strong>{html.escape(c)}</strong></p>"
        if isinstance(c, Strong)
        else f"<p>{html.escape(str(c))}</p>"
    ),
    "bullets": lambda c: "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in c) + "</ul>",  # type: ignore[attr-defined]
    "table": _html_table,
    "image": _html_image,
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:75em;margin:2em auto;padding:0 1em;line-height:1.45}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    "td,th{border:1px solid #ccc;padding:.25em .5em}"
    "th{background:#f3f3f3}img{max-width:100%}"
)
