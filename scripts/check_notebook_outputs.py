"""Checks an executed notebook's outputs (called by run_notebooks.py after a notebook ran without a cell error).

A notebook passes when:
- its code cells carry execution counts 1..N in order (it ran top to bottom in one fresh kernel: no hidden state);
- every image output is a valid image: `image/png` decodes from base64 to a PNG (signature, IHDR chunk with a
  non-zero size, IEND), `image/svg+xml` parses as XML whose root is an `<svg>` with at least one child;
- every table output (`text/html` holding a `<table>`) has at least one body row with a cell;
- it shows at least one image and at least one table (each stage notebook plots and tabulates);
- no code cell's last output is stderr text. evcxr does not report a runtime failure as a cell error: an `Err`
  reaching a cell's `?` or a panic is printed on stderr and the cell's status is still "ok" (only compile errors
  are errors). So every notebook cell must end with stdout or a display, and a cell whose output ends on stderr
  is taken as failed.
- no display is lost. evcxr keeps only the last display of each MIME type per cell (a second chart or table
  printed by the same cell replaces the first in the executed copy), so every code cell must show at least as
  many displays (image/png, image/svg+xml, text/html outputs) as its source has `.evcxr_display()` calls, and no
  `.evcxr_display()` call may sit inside a `for` / `while` / `loop` body (combine such displays into one:
  r1lab::notebook::grids::{titled_tables, stacked_png}). A cell whose display is conditional declares what it
  must show at least in its metadata, `{"r1lab": {"displays": N}}`, which replaces both rules for that cell.

usage: python scripts/check_notebook_outputs.py EXECUTED.ipynb...   (exit status 1 on any problem)
"""

import base64
import re
import struct
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import nbformat

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(data: str) -> str | None:
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except ValueError as e:
        return f"image/png is not base64: {e}"
    if not raw.startswith(PNG_SIGNATURE):
        return "image/png lacks the PNG signature"
    if len(raw) < 33 or raw[12:16] != b"IHDR":
        return "image/png has no IHDR chunk"
    width, height = struct.unpack(">II", raw[16:24])
    if width == 0 or height == 0:
        return f"image/png is {width}x{height}"
    if b"IEND" not in raw[-12:]:
        return "image/png is truncated (no IEND chunk at the end)"
    return None


def svg_problem(data: str) -> str | None:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return f"image/svg+xml does not parse: {e}"
    if not root.tag.endswith("svg"):
        return f"image/svg+xml root is <{root.tag}>, not <svg>"
    if len(root) == 0:
        return "image/svg+xml is empty"
    return None


class _Rows(HTMLParser):
    """Counts <td> cells inside <tbody> of every <table>."""

    def __init__(self):
        super().__init__()
        self.tables = []
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(0)
        elif tag == "tbody":
            self.in_body = True
        elif tag == "td" and self.in_body and self.tables:
            self.tables[-1] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False


def table_problems(html: str) -> tuple[int, list[str]]:
    """(tables found, problems) of one text/html output."""
    p = _Rows()
    p.feed(html)
    problems = []
    for i, cells in enumerate(p.tables):
        caption = re.search(r"<caption>\s*(\d+) rows", html)
        if cells == 0 or (caption and int(caption.group(1)) == 0):
            problems.append(f"table {i} has no rows")
    return len(p.tables), problems


DISPLAY_CALL = re.compile(r"\.evcxr_display\(\s*\)")
LOOP_HEAD = re.compile(r"\b(?:for|while|loop)\b[^{};]*\{")
DISPLAY_MIMES = ("image/png", "image/svg+xml", "text/html")


def rust_code_only(src: str) -> str:
    """`src` with comments and the contents of string and char literals blanked (so braces in format strings
    do not count); same length, newlines kept."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('"' + re.sub(r"[^\n]", " ", src[i + 1 : j - 1]) + ('"' if j - i > 1 else ""))
            i = j
        elif c == "'" and re.match(r"'(?:\\.|[^\\'])'", src[i:]):
            m = re.match(r"'(?:\\.|[^\\'])'", src[i:])
            out.append(" " * m.end())
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def loop_bodies(code: str) -> list[tuple[int, int]]:
    """(start, end) offsets of every `for` / `while` / `loop` body in `code` (comments and strings blanked)."""
    bodies = []
    for m in LOOP_HEAD.finditer(code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                break
            j += 1
        bodies.append((m.end(), j))
    return bodies


def display_problems(i: int, cell) -> list[str]:
    """Displays of code cell `i` that the executed copy lost (see the module doc)."""
    shown = sum(1 for out in cell.get("outputs", []) for mime in out.get("data", {}) if mime in DISPLAY_MIMES)
    declared = cell.get("metadata", {}).get("r1lab", {}).get("displays")
    if declared is not None:
        if shown < declared:
            return [f"code cell {i} shows {shown} display(s) but its metadata r1lab.displays says {declared}"]
        return []
    code = rust_code_only(cell.source)
    calls = [m.start() for m in DISPLAY_CALL.finditer(code)]
    problems = []
    if any(a <= c < b for c in calls for a, b in loop_bodies(code)):
        problems.append(
            f"code cell {i} calls .evcxr_display() inside a loop: evcxr keeps only the last display of each kind "
            "per cell; combine them into one (titled_tables / stacked_png) or split the cell"
        )
    if shown < len(calls):
        problems.append(
            f"code cell {i} calls .evcxr_display() {len(calls)} times but shows {shown} display(s): evcxr keeps "
            "only the last display of each kind per cell; split the cell (one chart or table each), or declare "
            'a conditional display in the cell metadata {"r1lab": {"displays": N}}'
        )
    return problems


def ended_on_stderr(cell) -> str | None:
    """The cell's stderr text if its last output is stderr (a `?` error or a panic, which evcxr reports as ok)."""
    outs = cell.get("outputs", [])
    if outs and outs[-1].get("output_type") == "stream" and outs[-1].get("name") == "stderr":
        return "".join(o.get("text", "") for o in outs if o.get("name") == "stderr").strip()
    return None


def check(nb) -> list[str]:
    problems = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(code)} in order")
    images = tables = 0
    for i, cell in enumerate(code, start=1):
        stderr = ended_on_stderr(cell)
        if stderr is not None:
            tail = stderr.splitlines()[-3:]
            problems.append(f"code cell {i} ended on stderr (a `?` error or a panic, which evcxr does not flag): {tail}")
        problems.extend(display_problems(i, cell))
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for mime, value in data.items():
                text = value if isinstance(value, str) else "".join(value)
                bad = None
                if mime == "image/png":
                    images += 1
                    bad = png_problem(text)
                elif mime == "image/svg+xml":
                    images += 1
                    bad = svg_problem(text)
                elif mime == "text/html" and "<table" in text:
                    n, table_bad = table_problems(text)
                    tables += n
                    bad = "; ".join(table_bad) or None
                if bad:
                    problems.append(f"code cell {i}: {bad}")
    if images == 0:
        problems.append("no image output (PNG or SVG)")
    if tables == 0:
        problems.append("no table output")
    return problems


def main() -> int:
    failed = 0
    for path in map(Path, sys.argv[1:]):
        problems = check(nbformat.read(path, as_version=4))
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
