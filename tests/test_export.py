"""Static figure export with no browser, a browser that hangs or dies, and a real one.

Each case runs ``export_figures`` in a fresh process with the browser lookup pointed where
the case needs it (``BROWSER_PATH``, and ``XDG_DATA_HOME`` at an empty directory so that no
copy downloaded by ``kaleido_get_chrome`` is found first), under a timeout: before static
export was bounded, the first two cases waited for ever.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.reporting.figure_style import PNG_SCALE
from harness.reporting.static_export import static_timeout

ROOT = Path(__file__).resolve().parents[1]
STATIC = ("pdf", "svg", "png")
EXPORT = """
import json, sys
from pathlib import Path
import plotly.graph_objects as go
from harness.reporting.figures import export_figures
figure = go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2]))
figure.update_layout(width=317, height=240)  # a column of a two-column paper, 3.3 in
result = export_figures({"a": figure, "b": figure}, Path(sys.argv[1]))
print(json.dumps({"files": result.files, "error": result.static_error}))
"""


def export(tmp_path: Path, browser: str | None, timeout: float = 60, limit: float = 90):
    """``export_figures`` of two figures in a subprocess: (result, stderr, seconds)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "HARNESS_STATIC_TIMEOUT": str(timeout),
    }
    if browser is not None:
        env["BROWSER_PATH"] = browser
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", EXPORT, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=limit,
        env=env,
    )
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr, seconds


def fake_browser(tmp_path: Path, body: str) -> Path:
    """An executable "browser" that records its pid, then runs ``body``."""
    path = tmp_path / "fake-chrome"
    path.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'browser.pid'}\n{body}\n")
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def only_html_and_json(out: Path, result: dict) -> None:
    assert result["files"] == {s: {"html": f"{s}.html", "json": f"{s}.json"} for s in "ab"}
    for stem in "ab":
        assert (out / f"{stem}.html").stat().st_size > 0
        assert json.loads((out / f"{stem}.json").read_text())["data"]
        assert not any((out / f"{stem}.{ext}").exists() for ext in STATIC)


def test_missing_browser_writes_html_and_json_at_once(tmp_path):
    result, stderr, seconds = export(tmp_path, "/nonexistent/chrome")
    assert result["error"] == "BROWSER_PATH='/nonexistent/chrome' is not an executable file"
    only_html_and_json(tmp_path / "out", result)
    assert seconds < 20, seconds  # no browser is started, nothing is waited for
    assert "Traceback" not in stderr


def test_hanging_browser_is_cut_off_and_killed(tmp_path):
    browser = fake_browser(tmp_path, "exec sleep 1000")
    result, stderr, seconds = export(tmp_path, str(browser), timeout=3, limit=60)
    assert (
        result["error"] == f"the browser at {browser} did not start and render a figure within 3 s"
    )
    only_html_and_json(tmp_path / "out", result)
    assert 3 <= seconds < 30, seconds
    pid = int((tmp_path / "browser.pid").read_text())
    assert not alive(pid), "the hung browser outlived the export"
    assert "Traceback" not in stderr


def test_browser_that_dies_fails_fast(tmp_path):
    browser = fake_browser(tmp_path, "echo 'cannot open display' >&2; exit 1")
    result, _, seconds = export(tmp_path, str(browser), timeout=60)
    assert result["error"] == (
        f"the browser at {browser} failed: BrowserFailedError: "
        "The browser seemed to close immediately after starting."
    )
    only_html_and_json(tmp_path / "out", result)
    assert seconds < 45, seconds  # the failure is seen, not waited out


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf", "1e999"])
def test_bad_timeout_setting_is_refused(raw):
    with pytest.raises(ValueError, match="HARNESS_STATIC_TIMEOUT must be a number of seconds"):
        static_timeout(raw)


def test_real_browser_writes_every_format(tmp_path, usable_browser):
    result, stderr, _ = export(tmp_path, usable_browser)
    out = tmp_path / "out"
    assert result["error"] is None, stderr
    for stem in "ab":
        assert set(result["files"][stem]) == {"html", "json", *STATIC}
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:500]
        png = (out / f"{stem}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (317 * PNG_SCALE, 240 * PNG_SCALE)  # 288 dpi
