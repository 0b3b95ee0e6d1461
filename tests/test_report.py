"""Reports from real records: a tiny SP study and a tiny comparison on tracr-reverse."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.benchmark.compare import run_compare
from harness.cli import main
from harness.configs.compare import load_compare_config
from harness.configs.study import load_config
from harness.evaluation.stats import bootstrap_interval
from harness.records.selection import method_label
from harness.records.store import read_records
from harness.study.driver import run_study
from tests.test_study import harness, write_study

pytestmark = pytest.mark.slow

BOOTSTRAP = 200
COMPARISON = {
    "version": 1,
    "kind": "compare",
    "name": "tiny-cmp",
    "tasks": ["tracr-reverse"],
    "task_options": {"device": "cpu"},
    "ablations": ["resample"],
    "seeds": [0, 1],
    "bootstrap_samples": BOOTSTRAP,
    "methods": {
        "sp": {
            "params": {"tree_optimisation": True, "epochs": 3},
            "sweep": {"regularize_lambda": [0.1, 10.0]},
        },
        "random": {},
    },
}
STATIC = ("pdf", "svg", "png")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Records of both sources, and a report of them built by ``harness report``."""
    root = tmp_path_factory.mktemp("report")
    runs = root / "runs"
    study_path = write_study(root, heldout={"seeds": 2})
    run_study(load_config(study_path), runs_dir=runs, progress=False)
    compare_path = root / "tiny-cmp.yaml"
    compare_path.write_text(yaml.safe_dump(COMPARISON))
    run_compare(load_compare_config(compare_path), runs, progress=False)
    out = root / "out"
    code = main(
        ["report", str(study_path), str(compare_path), "--runs-dir", str(runs), "--out", str(out)]
    )
    assert code == 0
    return {
        "root": root,
        "runs": runs,
        "out": out,
        "study": read_records(runs / "tiny" / "trials.jsonl"),
        "compare": read_records(runs / "tiny-cmp" / "trials.jsonl"),
        "heldout": read_records(runs / "tiny" / "heldout.jsonl"),
        "args": [str(study_path), str(compare_path), "--runs-dir", str(runs)],
    }


FIGURES = [
    "roc",
    "faithfulness",
    "history-tiny",
    "slice-tiny",
    "parallel-tiny",
    "contour-tiny",
    "training-tiny",
    "heldout-tiny",
]
TABLES = [
    "auc-resample-score-trapezoid",
    "auc-resample-sweep-pessimistic",
    "auc-acdc-zero-score-trapezoid",
    "best-params",
    "trials-tiny",
    "trials-tiny-cmp",
]


def test_every_file_is_written(built):
    out = built["out"]
    for name in ("index.html", "report.md", "tables/auc.csv", "figures/plotly.min.js"):
        assert (out / name).stat().st_size > 0, name
    for stem in TABLES:
        for ext in ("md", "tex"):
            assert (out / "tables" / f"{stem}.{ext}").stat().st_size > 0, (stem, ext)
    for stem in ("best-params", "trials-tiny", "trials-tiny-cmp"):
        assert (out / "tables" / f"{stem}.csv").stat().st_size > 0
    for stem in FIGURES:
        for ext in ("html", "json", "caption.md", "tex"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0, (stem, ext)
        assert f"figures/{stem}.html" in (out / "index.html").read_text()
    html = (out / "figures" / f"{FIGURES[0]}.html").read_text()
    assert 'src="plotly.min.js"' in html and "cdn.plot.ly" not in html  # works offline


def test_static_figures_and_inline_pngs(built, usable_browser):
    out = built["out"]
    for stem in FIGURES:
        for ext in STATIC:
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0, (stem, ext)
    markdown = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", markdown)
    assert len(images) >= len(FIGURES)
    assert all((out / image).is_file() for image in images)


def _expected_aucs(built) -> dict[tuple, list[float]]:
    expected: dict[tuple, list[float]] = {}
    for r in built["compare"]:
        assert r["state"] == "COMPLETE", r.get("fail_reason")
        for gt, conventions in r["auc"].items():
            for convention, value in conventions.items():
                key = (method_label(r), r["task"], r["params"]["ablation"], gt, convention)
                expected.setdefault(key, []).append(value)
    best = max(
        (r for r in built["study"] if r["state"] == "COMPLETE"), key=lambda r: r["objective"]
    )
    assert best["objective"] == best["auc"]["resample"]["score-trapezoid"]
    heldout = built["heldout"]
    assert [r["trial"] for r in heldout] == [best["trial"]] * 2
    ablation = best["params"].get("ablation", "mean")  # SP's default
    for gt in best["auc"]:  # the held-out seeds, never the selection value; no sweep
        key = ("sp (tree) tuned (tiny), held-out", best["task"], ablation, gt, "score-trapezoid")
        expected[key] = [r["auc"][gt]["score-trapezoid"] for r in heldout]
    return expected


def test_auc_tables_equal_the_records(built):
    out = built["out"]
    expected = _expected_aucs(built)
    csv = pd.read_csv(out / "tables" / "auc.csv")
    assert len(csv) == len(expected)
    for _, row in csv.iterrows():
        key = (row["method"], row["task"], row["ablation"], row["ground truth"], row["convention"])
        values = expected[key]
        assert row["seeds"] == len(values)
        assert row["mean"] == pytest.approx(sum(values) / len(values), abs=1e-12)
        low, high = bootstrap_interval(values, BOOTSTRAP)
        assert (row["ci low"], row["ci high"]) == pytest.approx((low, high))
    markdown = (out / "tables" / "auc-resample-score-trapezoid.md").read_text()
    assert "score-trapezoid" in markdown.splitlines()[0]
    for (method, _, _, gt, convention), values in expected.items():
        if (gt, convention) != ("resample", "score-trapezoid"):
            continue
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {method} |"))
        assert f"{sum(values) / len(values):.3f}" in line
    assert "**" in markdown  # the best of the column is bold
    report = (out / "report.md").read_text()
    assert markdown.split("\n\n", 1)[1].strip() in report


def test_latex_has_one_row_per_method(built):
    tex = (built["out"] / "tables" / "auc-resample-score-trapezoid.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "score-trapezoid" in tex
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule", 1)[0]
    rows = [line for line in body.splitlines() if line.strip().endswith(r"\\")]
    assert sorted(row.split("&")[0].strip() for row in rows) == [
        "random",
        "sp (tree)",
        "sp (tree) tuned (tiny), held-out",
    ]
    assert r"\bfseries" in body


def test_best_params_and_trials_tables(built):
    out = built["out"]
    best = max(
        (r for r in built["study"] if r["state"] == "COMPLETE"), key=lambda r: r["objective"]
    )
    params = pd.read_csv(out / "tables" / "best-params.csv")
    assert list(params["study"]) == ["tiny"] and params["trial"][0] == best["trial"]
    for name in ("learning_rate", "regularize_lambda", "init_val", "epochs"):
        assert params[name][0] == pytest.approx(best["params"][name])
    trials = pd.read_csv(out / "tables" / "trials-tiny.csv")
    assert list(trials["trial"]) == sorted(r["trial"] for r in built["study"])
    by_trial = {r["trial"]: r for r in built["study"]}
    for _, row in trials.iterrows():
        assert row["objective"] == pytest.approx(by_trial[row["trial"]]["objective"])
    runs = pd.read_csv(out / "tables" / "trials-tiny-cmp.csv")
    assert len(runs) == len(built["compare"]) == 4


def report_without_static(built, tmp_path, browser: str, timeout: float = 60):
    """``harness report`` in a fresh process, the browser lookup pointed at ``browser``
    (and no downloaded copy found first): (exit code, stderr lines, output dir, seconds)."""
    out = tmp_path / "report"
    env = {
        "BROWSER_PATH": browser,
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "HARNESS_STATIC_TIMEOUT": str(timeout),
    }
    start = time.monotonic()
    proc = harness("report", *built["args"], "--out", str(out), cwd=tmp_path, env=env, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines, out, time.monotonic() - start


def assert_html_and_json_only(out: Path) -> None:
    for stem in FIGURES:
        assert (out / "figures" / f"{stem}.html").stat().st_size > 0
        assert (out / "figures" / f"{stem}.json").stat().st_size > 0
        assert not any((out / "figures" / f"{stem}.{ext}").exists() for ext in STATIC)
    assert (out / "index.html").stat().st_size > 0
    assert f"figures/{FIGURES[0]}.html" in (out / "index.html").read_text()
    assert ".png" not in (out / "report.md").read_text()


def test_without_a_browser_html_json_and_one_warning(built, tmp_path):
    code, stderr, out, _ = report_without_static(built, tmp_path, "/nonexistent/chrome")
    assert code == 0
    assert stderr == [
        "harness: warning: no PDF/SVG/PNG figures, only HTML and JSON "
        "(BROWSER_PATH='/nonexistent/chrome' is not an executable file); for them install "
        "Chromium (Debian/Ubuntu, as root: apt-get install chromium) or set BROWSER_PATH to "
        "a Chrome/Chromium executable"
    ]
    assert_html_and_json_only(out)


def test_a_hanging_browser_costs_one_time_limit(built, tmp_path):
    browser = tmp_path / "fake-chrome"
    browser.write_text("#!/bin/sh\nexec sleep 1000\n")
    browser.chmod(0o755)
    code, stderr, out, seconds = report_without_static(built, tmp_path, str(browser), timeout=4)
    assert code == 0
    assert len(stderr) == 1 and f"the browser at {browser} did not start" in stderr[0]
    assert "within 4 s" in stderr[0] and "apt-get install chromium" in stderr[0]
    assert 4 <= seconds < 40, seconds
    assert_html_and_json_only(out)


def test_unknown_study_is_one_line(tmp_path, capsys):
    assert main(["report", "no-such-study", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no records" in err[0]
    assert main(["report", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_source_of_a_study_name_without_its_config(built):
    from harness.reporting.report import load_source

    source = load_source("tiny", Path(built["runs"]))
    assert source.kind == "study" and source.direction == "maximize"
    assert load_source("tiny-cmp", Path(built["runs"])).kind == "compare"


def test_two_objective_study_has_its_pareto_front(tmp_path):
    """A faithfulness × circuit-size study: the front in the table and figure is exactly
    the trials no other trial beats on both objectives (checked by brute force here)."""
    path = write_study(
        tmp_path,
        name="tiny-multi",
        objective={"metric": "faithfulness", "k": 3, "multi": True},
        sampler={"type": "random"},
        n_trials=8,
        search_space={
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            "regularize_lambda": {"type": "float", "low": 0.01, "high": 30.0, "log": True},
            "epochs": {"type": "int", "low": 2, "high": 6},
        },
        enqueue=[],
    )
    runs, out = tmp_path / "runs", tmp_path / "out"
    run_study(load_config(path), runs_dir=runs, progress=False)
    assert main(["report", str(path), "--runs-dir", str(runs), "--out", str(out)]) == 0
    records = [r for r in read_records(runs / "tiny-multi" / "trials.jsonl")]
    points = {r["trial"]: tuple(r["objective"]) for r in records if r["state"] == "COMPLETE"}
    assert len(points) >= 2

    def beaten(p):
        return any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points.values())

    expected = sorted(t for t, p in points.items() if not beaten(p))
    table = pd.read_csv(out / "tables" / "pareto-tiny-multi.csv")
    assert sorted(table["trial"]) == expected
    assert list(table["circuit edges"]) == sorted(table["circuit edges"])
    figure = (out / "figures" / "pareto-tiny-multi.json").read_text()
    assert "Pareto front" in figure
    assert "pareto-tiny-multi" in (out / "report.md").read_text()
