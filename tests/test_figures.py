"""Paper figures: every kind built from synthetic records (tests/figure_records.py), at the
sizes and font sizes of a two-column paper, one style per method in every report, a
caption beside each; tables byte for byte as before; and, where a browser is present,
every figure rendered to SVG, PDF and PNG and checked: no text outside the canvas or
under other text, no label cut, PDF fonts embedded, vector text only."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.configs.figure import FigureConfig
from harness.configs.loading import load_any_config
from harness.reporting.captions import latex_text
from harness.reporting.figure_checks import (
    hidden_text,
    missing_labels,
    pdf_fonts,
    svg_text_boxes,
    text_outside_canvas,
)
from harness.reporting.figure_style import (
    COLUMN_IN,
    FONT_PT,
    PAGE_IN,
    PNG_SCALE,
    PX_PER_IN,
    SMALL_PT,
    method_style,
)
from harness.reporting.report import build_report, load_source
from tests.figure_records import METHODS, SUITE_TASKS, TASKS, write_sources, write_suite

COLUMN_PX, PAGE_PX = round(COLUMN_IN * PX_PER_IN), round(PAGE_IN * PX_PER_IN)
STUDY_KINDS = ("history", "importance", "slice", "parallel", "contour", "training", "heldout")
FIGURES = {
    "roc": PAGE_PX,
    "faithfulness": PAGE_PX,
    "suite-auc": PAGE_PX,
    **{f"{kind}-figs-study": COLUMN_PX for kind in STUDY_KINDS},
    "slice-figs-study": PAGE_PX,
    "parallel-figs-study": PAGE_PX,
    "pareto-figs-multi": COLUMN_PX,
}
"""Every figure kind of the synthetic report, and its width under the default settings."""
SUITE_FIGURE = "suite-auc"
LEGEND = ["sp (tree)", *METHODS[1:], "sp (tree) tuned (figs-study), held-out"]
LABELS = {
    "roc": [*TASKS, *LEGEND],
    "faithfulness": [*TASKS, *LEGEND],
    "suite-auc": [*TASKS, *LEGEND[:-1]],
    "parallel-figs-study": ["learning rate (log)", "λ (regularisation) (log)", "epochs", "pruned"],
    "importance-figs-study": ["learning rate", "initial logit", "epochs"],
    "heldout-figs-study": ["selection", "held-out"],
    "suite-wide": [*SUITE_TASKS, "sp (tree)", "acdc", "eap", "random"],
}
"""Category labels each figure must show whole (task names, parameter names...)."""


def build(root: Path, figure: dict | None = None, static: bool = False) -> Path:
    """The report of every synthetic source (a suite's besides), under ``root/report``."""
    paths = write_sources(root, figure)
    sources = [
        load_source(str(paths[n]), root / "runs") for n in ("figs-study", "figs-multi", "figs-cmp")
    ]
    out = root / "report"
    result = build_report(sources, out, static=static)
    assert not static or result.warning is None, result.warning  # every static file written
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("figures"))


def figure_json(out: Path, stem: str) -> dict:
    return json.loads((out / "figures" / f"{stem}.json").read_text())


def test_every_figure_kind_is_drawn_at_its_width(report):
    for stem, width in FIGURES.items():
        layout = figure_json(report, stem)["layout"]
        assert layout["width"] == width, stem
        assert layout["height"] > 100, stem
    old = {"roc-tracr-reverse-resample-resample", "faithfulness-tracr-reverse-resample"}
    assert not any((report / "figures" / f"{stem}.json").exists() for stem in old)


def font_sizes(node, found: list[float]) -> list[float]:
    """Every font size set anywhere in a figure's JSON (px)."""
    if isinstance(node, dict):
        for key, value in node.items():
            fonts = ("font", "tickfont", "textfont", "title_font")
            if (
                key in fonts
                and isinstance(value, dict)
                and isinstance(value.get("size"), float | int)
            ):
                found.append(value["size"])
            font_sizes(value, found)
    elif isinstance(node, list):
        for item in node:
            font_sizes(item, found)
    return found


def test_fonts_are_7_to_9_pt_at_print_size(report):
    for stem in FIGURES:
        sizes = font_sizes(figure_json(report, stem), [])
        assert sizes, stem
        points = {round(px * 72 / PX_PER_IN, 2) for px in sizes}
        assert points <= {float(SMALL_PT), float(FONT_PT)}, (stem, points)


def test_each_method_has_one_style_in_every_report(tmp_path):
    """The suite report lists its methods in another order: each method's colour and
    marker are still the ones the two-task report gives it."""
    out = build(tmp_path / "a")
    write_suite(tmp_path / "b")
    suite_out = tmp_path / "b" / "report"
    build_report([load_source("figs-suite", tmp_path / "b" / "runs")], suite_out, static=False)
    seen: dict[str, set] = {}
    for path in [*(out / "figures").glob("*.json"), *(suite_out / "figures").glob("*.json")]:
        for trace in json.loads(path.read_text())["data"]:
            marker = trace.get("marker", {})
            named = trace.get("name") in METHODS or trace.get("name") == "sp (tree)"
            if named and isinstance(marker.get("color"), str):
                seen.setdefault(trace["name"], set()).add((marker["color"], marker.get("symbol")))
    assert {"sp (tree)", "acdc", "eap", "random"} <= set(seen)
    for name, styles in seen.items():
        style = method_style(name)
        assert styles == {(style.colour, style.symbol)}, (name, styles)
    colours = {
        method_style(m).colour for m in ("sp", "acdc", "eap", "eap-ig", "edge-pruning", "random")
    }
    assert len(colours) == 6  # no two of the usual methods share a colour


def test_suite_tasks_are_ordered_by_the_methods_gap(tmp_path):
    write_suite(tmp_path)
    out = tmp_path / "report"
    build_report([load_source("figs-suite", tmp_path / "runs")], out, static=False)
    layout = figure_json(out, SUITE_FIGURE)["layout"]
    order = [
        t
        for _, t in sorted(
            zip(layout["yaxis"]["tickvals"], layout["yaxis"]["ticktext"], strict=True), reverse=True
        )
    ]
    assert sorted(order) == sorted(SUITE_TASKS)
    import pandas as pd

    frame = pd.read_csv(out / "tables" / "suite-resample-score-trapezoid.csv")
    frame = pd.concat([frame, pd.read_csv(out / "tables" / "suite-zero-score-trapezoid.csv")])
    frame = frame[frame["method"] != "random"]
    spread = frame.groupby(["task", "ablation"])["mean"].agg(lambda v: v.max() - v.min())
    gaps = spread.groupby(level="task").mean()
    assert [gaps[t] for t in order] == sorted(gaps, reverse=True)


def test_captions_beside_each_figure_and_in_latex(report):
    for stem in FIGURES:
        caption = (report / "figures" / f"{stem}.caption.md").read_text().strip()
        tex = (report / "figures" / f"{stem}.tex").read_text()
        assert latex_text(caption) in tex and f"\\label{{fig:{stem}}}" in tex, stem
        wide = FIGURES[stem] == PAGE_PX
        assert ("figure*" in tex) == wide and f"figures/{stem}.pdf" in tex, stem
    roc = (report / "figures" / "roc.caption.md").read_text()
    for words in (
        "score-trapezoid",
        "sweep-pessimistic",
        "ablation",
        "ground truth",
        "3 seeds",
        "interval",
    ):
        assert words in roc, words
    suite = (report / "figures" / f"{SUITE_FIGURE}.caption.md").read_text()
    for words in ("score-trapezoid", "resample", "acdc-zero", "seeds", "95% percentile-bootstrap"):
        assert words in suite, words
    heldout = (report / "figures" / "heldout-figs-study.caption.md").read_text()
    assert "3 held-out seeds" in heldout and "biased upward" in heldout
    markdown = (report / "report.md").read_text()
    assert "`figure: {width: auto, formats: [pdf, svg, png]}`" in markdown
    assert roc.strip() in markdown


def test_tables_are_byte_identical_to_before(report, tmp_path):
    """Every table file equals what the code before the paper figures wrote from the same
    records (hashes in tests/figure_tables.sha256)."""
    expected = {}
    for line in (Path(__file__).parent / "figure_tables.sha256").read_text().splitlines():
        if line and not line.startswith("#"):
            name, file, digest = line.split()
            expected[(name, file)] = digest
    write_suite(tmp_path)
    suite = tmp_path / "report"
    build_report([load_source("figs-suite", tmp_path / "runs")], suite, static=False)
    found = {
        (name, path.name): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for name, out in (("all", report), ("suite", suite))
        for path in sorted((out / "tables").iterdir())
    }
    assert sorted(found) == sorted(expected)
    assert [k for k in found if found[k] != expected[k]] == []


def test_figure_section_in_every_config_kind(tmp_path):
    paths = write_sources(tmp_path, {"width": "column", "formats": ["pdf"]})
    for path in paths.values():
        config = load_any_config(path)
        assert config.figure == FigureConfig(width="column", formats=["pdf"])
        assert "figure" not in config.model_dump()  # no result depends on it
    study = load_any_config(paths["figs-study"])
    plain = load_any_config(write_sources(tmp_path / "plain")["figs-study"])
    assert study.config_hash() == plain.config_hash()  # a study resumes after it changes
    with pytest.raises(ValueError, match="figure.width"):
        load_any_config(paths["figs-cmp"], {"figure.width": "poster"})


def test_column_width_and_formats_from_the_figure_section(tmp_path):
    out = build(tmp_path, {"width": "column", "formats": []})
    for stem in FIGURES:
        assert figure_json(out, stem)["layout"]["width"] == COLUMN_PX, stem
    assert "`figure: {width: column, formats: []}`" in (out / "report.md").read_text()
    roc = (out / "figures" / "roc.tex").read_text()
    assert "\\begin{figure}" in roc and "\\columnwidth" in roc


def test_differing_figure_sections_are_refused(tmp_path):
    paths = write_sources(tmp_path, {"width": "page"})
    plain = write_sources(tmp_path / "plain", {"width": "column"})
    sources = [
        load_source(str(paths["figs-cmp"]), tmp_path / "runs"),
        load_source(str(plain["figs-study"]), tmp_path / "plain" / "runs"),
    ]
    with pytest.raises(ValueError, match="figure sections of 'figs-cmp' and 'figs-study' differ"):
        build_report(sources, tmp_path / "out", static=False)


# --- rendered files (need a browser) ---------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, usable_browser) -> Path:
    root = tmp_path_factory.mktemp("rendered")
    out = build(root, static=True)
    write_suite(root / "suite")
    suite = build_report([load_source("figs-suite", root / "suite" / "runs")], out / "suite")
    assert suite.warning is None, suite.warning
    return out


def svg_of(rendered: Path, stem: str) -> str:
    folder = rendered / "suite" / "figures" if stem == "suite-wide" else rendered / "figures"
    return (folder / f"{'suite-auc' if stem == 'suite-wide' else stem}.svg").read_text()


@pytest.mark.parametrize("stem", [*FIGURES, "suite-wide"])
def test_rendered_text_stays_on_the_canvas_whole(rendered, stem):
    svg = svg_of(rendered, stem)
    assert text_outside_canvas(svg) == []
    assert [(a.text, b.text) for a, b in hidden_text(svg)] == []
    assert missing_labels(svg, LABELS.get(stem, [])) == []
    assert "<image" not in svg  # every mark and letter vector, nothing embedded as pixels
    sizes = {round(float(s) * 72 / PX_PER_IN, 2) for s in re.findall(r"font-size: ([\d.]+)px", svg)}
    assert sizes <= {float(SMALL_PT), float(FONT_PT)}, sizes
    texts = [b.text for b in svg_text_boxes(svg)]
    assert texts, stem


def test_rendered_legends_list_each_method_once(rendered):
    for stem in ("roc", "faithfulness", "suite-auc"):
        legend = [b.text for b in svg_text_boxes(svg_of(rendered, stem)) if b.in_legend]
        entries = [text for text in legend if not text.startswith("AUC in each panel")]
        assert sorted(entries) == sorted(LABELS[stem][len(TASKS) :]), stem


@pytest.mark.parametrize("stem", list(FIGURES))
def test_rendered_pdf_fonts_are_embedded_and_sizes_right(rendered, stem):
    pdf = (rendered / "figures" / f"{stem}.pdf").read_bytes()
    fonts = pdf_fonts(pdf)
    assert fonts and all(f.embedded for f in fonts), fonts
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", pdf)
    assert abs(float(box.group(1)) - FIGURES[stem] * 72 / PX_PER_IN) < 1  # print size, in pt
    png = (rendered / "figures" / f"{stem}.png").read_bytes()
    assert struct.unpack(">I", png[16:20])[0] == FIGURES[stem] * PNG_SCALE
    if shutil.which("pdffonts"):
        listing = subprocess.run(
            ["pdffonts", str(rendered / "figures" / f"{stem}.pdf")], capture_output=True, text=True
        ).stdout.splitlines()[2:]
        assert listing and all(line.split()[-5] == "yes" for line in listing), listing


@pytest.fixture(scope="module")
def rendered_column(tmp_path_factory, usable_browser) -> Path:
    """Every figure at the width of one column, as SVG only."""
    root = tmp_path_factory.mktemp("column")
    out = build(root, {"width": "column", "formats": ["svg"]}, static=True)
    write_suite(root / "suite")
    suite = [load_source("figs-suite", root / "suite" / "runs")]
    column = FigureConfig(width="column", formats=["svg"])
    assert build_report(suite, out / "suite", figure=column).warning is None
    return out


@pytest.mark.slow
@pytest.mark.parametrize("stem", [*FIGURES, "suite-wide"])
def test_column_width_text_stays_on_the_canvas_whole(rendered_column, stem):
    """At 3.3 in a grid too wide for its panels wraps them, titles break into lines, the
    legend takes more rows: still nothing off the canvas, overlapping or cut."""
    svg = svg_of(rendered_column, stem)
    assert not (rendered_column / "figures" / "roc.pdf").exists()  # formats: svg only
    assert text_outside_canvas(svg) == []
    assert [(a.text, b.text) for a, b in hidden_text(svg)] == []
    assert missing_labels(svg, LABELS.get(stem, [])) == []
    assert f'width="{COLUMN_PX}"' in svg[:400]
