"""Checks of exported figure files: text that leaves the canvas, labels cut short, PDF
fonts not embedded.

A browser lays out a plotly figure and writes every string as an SVG ``<text>`` element at
its final position, so the SVG says where each string went: :func:`svg_text_boxes` adds up
the element's transforms (``translate``, ``rotate``, ``scale``, ``matrix``) and its ``x``/``y``
and ``text-anchor``, and takes the string's width from Helvetica's metrics (Arial and
Liberation Sans, which browsers substitute, share them). A box that leaves the view box is
text the reader cannot see (:func:`text_outside_canvas`); a category label that is not
written whole is a cut label (:func:`missing_labels`). :func:`pdf_fonts` reads a PDF's font
dictionaries (``pdffonts`` where it is installed gives the same answer).

Example:
    >>> svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50">'
    ...        '<g transform="translate(90,20)"><text x="0" y="0" style="font-size: 10px">'
    ...        'tracr-reverse</text></g></svg>')
    >>> [(b.text, round(b.x1)) for b in text_outside_canvas(svg)]
    [('tracr-reverse', 147)]
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

# Helvetica's advance widths (1/1000 em) for printable ASCII, from its Adobe font metrics.
_ASCII_WIDTHS = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 "
    "556 556 556 556 278 278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 "
    "556 833 722 778 667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 333 556 "
    "556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 278 556 500 722 "
    "500 500 500 334 260 334 584"
)
CHAR_WIDTHS = {chr(32 + i): int(w) for i, w in enumerate(_ASCII_WIDTHS.split())}
CHAR_WIDTHS.update({"·": 278, "×": 584, "–": 556, "—": 1000, "−": 584, "λ": 556, "²": 333})
WIDE_CHAR = 1000  # a character without a listed width counts as one em
ASCENT, DESCENT = 0.75, 0.25  # of the font size, above and below the baseline
_SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class TextBox:
    """Where one string of an SVG lies, in view-box units.

    Attributes:
        text: The string (the lines of a multi-line label joined by a space).
        x0, y0, x1, y1: Its bounding box (y down, as in SVG).
        in_legend: Whether it is a legend's text.
        slanted: Whether it is turned by an angle other than a multiple of 90° (its box
            is then larger than the string).
    """

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    in_legend: bool = False
    slanted: bool = False

    def overlaps(self, other: TextBox, margin: float = 0.5) -> bool:
        """Whether the two boxes share more than ``margin`` units in both directions."""
        return (
            min(self.x1, other.x1) - max(self.x0, other.x0) > margin
            and min(self.y1, other.y1) - max(self.y0, other.y0) > margin
        )


def text_width(text: str, size: float) -> float:
    """The advance width of ``text`` set in Helvetica at ``size`` px.

    Example:
        >>> text_width("sp", 10.0)
        10.56
    """
    return sum(CHAR_WIDTHS.get(c, WIDE_CHAR) for c in text) * size / 1000


def _matrix(transform: str) -> tuple[float, ...]:
    """An SVG ``transform`` attribute as an affine matrix ``(a, b, c, d, e, f)``."""
    m = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", transform or ""):
        v = [float(x) for x in re.split(r"[\s,]+", args.strip()) if x]
        if name == "translate":
            step = (1.0, 0.0, 0.0, 1.0, v[0], v[1] if len(v) > 1 else 0.0)
        elif name == "scale":
            step = (v[0], 0.0, 0.0, v[1] if len(v) > 1 else v[0], 0.0, 0.0)
        elif name == "rotate":
            a = math.radians(v[0])
            cx, cy = (v[1], v[2]) if len(v) == 3 else (0.0, 0.0)
            cos, sin = math.cos(a), math.sin(a)
            step = (cos, sin, -sin, cos, cx - cos * cx + sin * cy, cy - sin * cx - cos * cy)
        elif name == "matrix":
            step = tuple(v)
        else:
            raise ValueError(f"unknown SVG transform {name!r}")
        m = _compose(m, step)
    return m


def _compose(m: tuple[float, ...], n: tuple[float, ...]) -> tuple[float, ...]:
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (
        a * p + c * q,
        b * p + d * q,
        a * r + c * s,
        b * r + d * s,
        a * t + c * u + e,
        b * t + d * u + f,
    )


def _font_size(element: ET.Element, inherited: float) -> float:
    found = re.search(r"font-size:\s*([\d.]+)px", element.get("style", ""))
    return float(found.group(1)) if found else float(element.get("font-size", inherited))


def _is_legend(element: ET.Element) -> bool:
    """A legend's group: plotly's first legend is ``legend``, the others ``legend2``..."""
    return any(re.fullmatch(r"legend\d*", c) for c in element.get("class", "").split())


def _hidden(element: ET.Element) -> bool:
    style = element.get("style", "").replace(" ", "")
    return "display:none" in style or "visibility:hidden" in style


def _lines(text: ET.Element, size: float) -> list[tuple[str, float, float, float]]:
    """A ``<text>`` element's lines: (string, x, y, font size); plotly writes the lines of
    a multi-line label as ``<tspan class="line">`` with their own ``x`` and ``dy``."""
    x, y = float(text.get("x", 0)), float(text.get("y", 0))
    spans = [s for s in text if s.tag == f"{_SVG}tspan" and "line" in s.get("class", "")]
    if not spans:
        return [("".join(text.itertext()), x, y, size)]
    out, line_y = [], y
    for span in spans:
        dy = span.get("dy", "0")
        line_y += float(dy[:-2]) * size if dy.endswith("em") else float(dy or 0)
        out.append(("".join(span.itertext()), float(span.get("x", x)), line_y, size))
    return out


def svg_text_boxes(svg: str) -> list[TextBox]:
    """Every visible, non-empty string of an SVG with its bounding box (view-box units).

    Example:
        >>> svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100">'
        ...        '<text x="100" y="50" text-anchor="middle" style="font-size: 10px">'
        ...        'AUC</text></svg>')
        >>> box = svg_text_boxes(svg)[0]
        >>> box.text, round(box.x0, 2), round(box.x1, 2), box.y0, box.y1
        ('AUC', 89.44, 110.55, 42.5, 52.5)
    """
    boxes: list[TextBox] = []

    def visit(element: ET.Element, m: tuple[float, ...], size: float, legend: bool) -> None:
        if _hidden(element) or element.tag in (f"{_SVG}defs", f"{_SVG}clipPath"):
            return
        m = _compose(m, _matrix(element.get("transform", "")))
        size = _font_size(element, size)
        legend = legend or _is_legend(element)
        if element.tag != f"{_SVG}text":
            for child in element:
                visit(child, m, size, legend)
            return
        anchor = element.get("text-anchor", "start")
        for string, x, y, font in _lines(element, size):
            if not string.strip():
                continue
            width = text_width(string, font)
            left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
            corners = [
                (m[0] * px + m[2] * py + m[4], m[1] * px + m[3] * py + m[5])
                for px in (left, left + width)
                for py in (y - ASCENT * font, y + DESCENT * font)
            ]
            xs, ys = [c[0] for c in corners], [c[1] for c in corners]
            slanted = abs(m[1] * m[2]) > 1e-9 or (abs(m[0] * m[3]) > 1e-9 and abs(m[1]) > 1e-9)
            boxes.append(TextBox(string, min(xs), min(ys), max(xs), max(ys), legend, slanted))

    visit(ET.fromstring(svg), (1.0, 0.0, 0.0, 1.0, 0.0, 0.0), 16.0, False)
    return boxes


def svg_view_box(svg: str) -> tuple[float, float, float, float]:
    """The SVG's view box ``(x, y, width, height)`` (its width and height without one)."""
    root = ET.fromstring(svg)
    if root.get("viewBox"):
        x, y, w, h = (float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()))
        return x, y, w, h
    return 0.0, 0.0, float(root.get("width", 0)), float(root.get("height", 0))


def text_outside_canvas(svg: str, tolerance: float = 0.5) -> list[TextBox]:
    """The strings whose box leaves the view box by more than ``tolerance`` units."""
    x, y, w, h = svg_view_box(svg)
    return [
        b
        for b in svg_text_boxes(svg)
        if b.x0 < x - tolerance
        or b.y0 < y - tolerance
        or b.x1 > x + w + tolerance
        or b.y1 > y + h + tolerance
    ]


def legend_areas(svg: str) -> list[TextBox]:
    """The background rectangle of each legend (``text`` is ``"legend"``): what it hides.

    Example:
        >>> svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 99 99">'
        ...        '<g class="legend" transform="translate(10,20)">'
        ...        '<rect class="bg" width="30" height="40"/></g></svg>')
        >>> legend_areas(svg)
        [TextBox(text='legend', x0=10.0, y0=20.0, x1=40.0, y1=60.0, in_legend=True, slanted=False)]
    """
    areas = []

    def visit(element: ET.Element, m: tuple[float, ...], legend: bool) -> None:
        m = _compose(m, _matrix(element.get("transform", "")))
        legend = legend or _is_legend(element)
        if legend and element.tag == f"{_SVG}rect" and "bg" in element.get("class", "").split():
            x, y = float(element.get("x", 0)), float(element.get("y", 0))
            w, h = float(element.get("width", 0)), float(element.get("height", 0))
            xs, ys = (
                (m[0] * x + m[4], m[0] * (x + w) + m[4]),
                (m[3] * y + m[5], m[3] * (y + h) + m[5]),
            )
            areas.append(TextBox("legend", min(xs), min(ys), max(xs), max(ys), True))
        for child in element:
            visit(child, m, legend)

    visit(ET.fromstring(svg), (1.0, 0.0, 0.0, 1.0, 0.0, 0.0), False)
    return areas


def hidden_text(svg: str) -> list[tuple[TextBox, TextBox]]:
    """Pairs of strings that overlap, and strings under a legend (which has an opaque
    background): text a reader cannot read whole. Slanted strings are compared with the
    legend only (their boxes are larger than they are).

    Example:
        >>> svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 99 99">'
        ...        '<text x="0" y="10" style="font-size: 10px">abc</text>'
        ...        '<text x="5" y="12" style="font-size: 10px">def</text></svg>')
        >>> [(a.text, b.text) for a, b in hidden_text(svg)]
        [('abc', 'def')]
    """
    boxes = svg_text_boxes(svg)
    pairs = [
        (a, b)
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if not (a.slanted or b.slanted) and a.overlaps(b)
    ]
    for area in legend_areas(svg):
        pairs += [(b, area) for b in boxes if not b.in_legend and b.overlaps(area)]
    return pairs


def missing_labels(svg: str, labels: Iterable[str]) -> list[str]:
    """The ``labels`` (category names, legend entries) that no string of the SVG shows
    whole: cut short, abbreviated or left out.

    Example:
        >>> svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9">'
        ...        '<text>count-a</text><text>ess-freq</text></svg>')
        >>> missing_labels(svg, ["count-a", "count-less-freq"])
        ['count-less-freq']
    """
    shown = {b.text for b in svg_text_boxes(svg)}
    return [label for label in labels if label not in shown]


@dataclass(frozen=True)
class PdfFont:
    """A font a PDF uses.

    Attributes:
        name: Its ``/BaseFont``.
        subtype: ``Type0``, ``TrueType``, ``Type1``, ``Type3``...
        embedded: Whether its glyphs are in the file (a ``/FontFile``, ``/FontFile2`` or
            ``/FontFile3`` stream; a Type 3 font's glyphs are drawn by the file itself).
    """

    name: str
    subtype: str
    embedded: bool


def _pdf_objects(data: bytes) -> dict[int, bytes]:
    """A PDF's objects by number, those packed in object streams included."""
    objects = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(rb"(\d+)\s+\d+\s+obj\b(.*?)\bendobj", data, re.S)
    }
    for body in list(objects.values()):
        if b"/ObjStm" not in body.split(b"stream", 1)[0]:
            continue
        head, _, rest = body.partition(b"stream")
        raw = rest.lstrip(b"\r\n").rsplit(b"endstream", 1)[0]
        text = zlib.decompress(raw) if b"/FlateDecode" in head else raw
        first = int(re.search(rb"/First\s+(\d+)", head).group(1))
        pairs = [int(v) for v in text[:first].split()]
        numbers, offsets = pairs[0::2], [*pairs[1::2], len(text) - first]
        for number, start, end in zip(numbers, offsets, offsets[1:], strict=False):
            objects[number] = text[first + start : first + end]
    return objects


def pdf_fonts(data: bytes) -> list[PdfFont]:
    """Every font of a PDF (the bytes of the file) and whether it is embedded; a composite
    (``Type0``) font is embedded when its descendant font is.

    Example:
        >>> pdf = (b"1 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj "
        ...        b"2 0 obj << /Type /Font /Subtype /TrueType /BaseFont /ABC+Arial "
        ...        b"/FontDescriptor 3 0 R >> endobj "
        ...        b"3 0 obj << /Type /FontDescriptor /FontFile2 4 0 R >> endobj")
        >>> [(f.name, f.embedded) for f in pdf_fonts(pdf)]
        [('Helvetica', False), ('ABC+Arial', True)]
    """
    objects = _pdf_objects(data)

    def dictionary(body: bytes) -> bytes:
        return body.split(b"stream", 1)[0]

    def ref(body: bytes, key: bytes) -> int | None:
        found = re.search(rb"/" + key + rb"\s*\[?\s*(\d+)\s+\d+\s+R", body)
        return int(found.group(1)) if found else None

    def embedded(body: bytes) -> bool:
        if re.search(rb"/Subtype\s*/Type3", body):
            return True
        descendant = ref(body, b"DescendantFonts")
        if descendant is not None:
            return embedded(dictionary(objects.get(descendant, b"")))
        descriptor = ref(body, b"FontDescriptor")
        return descriptor is not None and bool(
            re.search(rb"/FontFile[23]?\b", dictionary(objects.get(descriptor, b"")))
        )

    descendants = {
        ref(dictionary(body), b"DescendantFonts")
        for body in objects.values()
        if b"/DescendantFonts" in body
    }
    fonts = []
    for number, body in sorted(objects.items()):
        head = dictionary(body)
        if not re.search(rb"/Type\s*/Font\b", head) or number in descendants:
            continue
        name = re.search(rb"/BaseFont\s*/([^\s/<>\[\]()]+)", head)
        subtype = re.search(rb"/Subtype\s*/(\w+)", head)
        fonts.append(
            PdfFont(
                name.group(1).decode() if name else "?",
                subtype.group(1).decode() if subtype else "?",
                embedded(head),
            )
        )
    return fonts
