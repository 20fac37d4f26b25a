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


def check(nb) -> list[str]:
    problems = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(code)} in order")
    images = tables = 0
    for i, cell in enumerate(code, start=1):
        outs = cell.get("outputs", [])
        if outs and outs[-1].get("output_type") == "stream" and outs[-1].get("name") == "stderr":
            tail = "".join(o.get("text", "") for o in outs if o.get("name") == "stderr").strip().splitlines()[-3:]
            problems.append(f"code cell {i} ended on stderr (a `?` error or a panic, which evcxr does not flag): {tail}")
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
