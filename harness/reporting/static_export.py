"""Static figure files (PDF, SVG, PNG) through kaleido, bounded in time.

kaleido 1.x renders in a Chrome or Chromium it looks up itself, and when that browser is
missing or does not answer, its calls wait for ever (its server thread dies and the caller
waits on a queue). So the browser is looked up first, the way kaleido does it (a copy
downloaded by ``kaleido_get_chrome``, then ``BROWSER_PATH``, then ``PATH`` and the usual
install paths); without one, nothing is started. With one, the rendering runs in a child
process (``python -m harness.reporting.static_export SPEC``) that reports each file it
writes; the parent gives the browser :data:`DEFAULT_TIMEOUT_S` seconds (or
``HARNESS_STATIC_TIMEOUT``) to start and render the first file, and as long for each later
one, then kills the child with the browser it started. A hung browser therefore costs one
timeout and never blocks the exit. A browser that failed in this process is not tried again
in it. ``python -m harness.reporting.static_export --find`` prints the browser found, or why
none (exit 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_ENV = "HARNESS_STATIC_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
HOW_TO_GET_THEM = (
    "for them install Chromium (Debian/Ubuntu, as root: apt-get install chromium) "
    "or set BROWSER_PATH to a Chrome/Chromium executable"
)
_FAILED: dict[str, str] = {}  # browser path -> why it failed in this process


@dataclass(frozen=True)
class StaticJob:
    """One static file to render.

    Attributes:
        figure: The figure's plotly JSON file.
        out: The file to write; its format is ``fmt``.
        fmt: ``"pdf"``, ``"svg"`` or ``"png"``.
        scale: Pixels per layout unit (PNG resolution).
    """

    figure: Path
    out: Path
    fmt: str
    scale: float = 1.0


@dataclass
class StaticResult:
    """What :func:`render_static` did.

    Attributes:
        written: The files written, in the order of the jobs.
        error: Why some or all are missing (one line), or ``None``.
        seconds: Wall time of the whole export, browser start included.
    """

    written: list[Path]
    error: str | None
    seconds: float


def static_timeout(raw: str | None = None) -> float:
    """The time limit in seconds for the browser's start and for each file.

    Args:
        raw: The setting; ``None`` reads ``HARNESS_STATIC_TIMEOUT``. Empty means
            :data:`DEFAULT_TIMEOUT_S`.

    Raises:
        ValueError: Not a finite number of seconds above 0 (one line).

    Example:
        >>> static_timeout("2.5"), static_timeout("")
        (2.5, 60.0)
    """
    raw = (os.environ.get(TIMEOUT_ENV, "") if raw is None else raw).strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds above 0, got {raw!r}")
    return value


def find_browser() -> tuple[str | None, str]:
    """The browser kaleido would start, without starting it.

    Returns:
        ``(path, "")`` when an executable file is found, else ``(None, why)`` with a
        one-line reason.

    Example:
        >>> path, why = find_browser()
        >>> (path is None) == bool(why)
        True
    """
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None, "kaleido is not installed (pip install 'circuit-harness[export]')"
    try:
        path = Chromium.find_browser(skip_local=False)
    except Exception as exc:  # a lookup that breaks means no browser, not a crash
        return None, f"looking for a browser failed ({type(exc).__name__}: {exc})"
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return str(path), ""
    set_path = os.environ.get("BROWSER_PATH")
    if set_path and (not path or str(path) == set_path):
        return None, f"BROWSER_PATH={set_path!r} is not an executable file"
    if path:
        return None, f"the browser found at {str(path)!r} is not an executable file"
    return None, "no Chrome or Chromium found"


def render_static(jobs: list[StaticJob], timeout: float | None = None) -> StaticResult:
    """Render ``jobs`` in one browser, or explain in one line why not; never waits longer
    than ``timeout`` seconds for the browser's start or for any one file.

    On failure the files already written are kept (the caller decides what to keep).

    Args:
        jobs: The files to write.
        timeout: Seconds; ``None`` means :func:`static_timeout`.

    Example:
        >>> render_static([]).error is None  # nothing to do starts no browser
        True
    """
    start = time.perf_counter()
    timeout = static_timeout() if timeout is None else timeout
    if not jobs:
        return StaticResult([], None, 0.0)
    browser, why = find_browser()
    if browser is None:
        return StaticResult([], why, time.perf_counter() - start)
    if browser in _FAILED:
        return StaticResult([], _FAILED[browser], time.perf_counter() - start)
    try:
        written, error = _run_child(browser, jobs, timeout)
    except OSError as exc:  # no room for the job list, no process to start
        written, error = [], f"could not start the export process ({exc})"
    if error is not None and not written:
        _FAILED[browser] = error
    return StaticResult(written, error, time.perf_counter() - start)


# ``python -m`` would put the working directory first on the child's import path, and a
# user's file there named like a module (``selectors.py``) would run: the child drops it.
_CHILD_MAIN = (
    "import sys, runpy; sys.path[:1] = [] if sys.path[:1] == [''] else sys.path[:1]; "
    "runpy.run_module('harness.reporting.static_export', run_name='__main__', alter_sys=True)"
)


def _run_child(
    browser: str, jobs: list[StaticJob], timeout: float
) -> tuple[list[Path], str | None]:
    spec = {
        "browser": browser,
        "timeout": timeout,
        "jobs": [
            {"figure": str(j.figure), "out": str(j.out), "format": j.fmt, "scale": j.scale}
            for j in jobs
        ],
    }
    package_root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        "PYTHONSAFEPATH": "1",  # Python 3.11+; _CHILD_MAIN does it on 3.10
    }
    written: list[Path] = []
    with (
        tempfile.TemporaryFile() as log,
        tempfile.NamedTemporaryFile("w", suffix=".json") as spec_file,
    ):
        json.dump(spec, spec_file)
        spec_file.flush()
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, spec_file.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        try:
            error = _watch(child, jobs, written, timeout, browser)
        finally:
            _kill_tree(child)  # the browser too; a no-op when all ended cleanly
        if error is None and len(written) < len(jobs):
            log.seek(0)
            error = _last_line(log.read().decode(errors="replace")) or (
                f"the export process ended with code {child.returncode}"
            )
    return written, error


def _watch(child: subprocess.Popen, jobs, written: list[Path], timeout: float, browser: str):
    """Read the child's ``ok <i>`` / ``error <why>`` lines until it ends; ``None`` or why not."""
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    fd = child.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                what = "start and render a figure" if not written else "render a figure"
                return f"the browser at {browser} did not {what} within {timeout:g} s"
            if not selector.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                kind, _, rest = line.decode(errors="replace").partition(" ")
                if kind == "ok" and rest.isdigit() and int(rest) < len(jobs):
                    written.append(jobs[int(rest)].out)
                    deadline = time.monotonic() + timeout
                elif kind == "error":  # anything else a library prints is not ours
                    return f"the browser at {browser} failed: {rest.strip()}"
    finally:
        selector.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout)  # closing the browser; the files are written
    return None


def _kill_tree(child: subprocess.Popen) -> None:
    """SIGKILL ``child`` and every process under it (the browser runs in its own session,
    so its process group is not ours). Each found process is stopped first, so none can
    fork a new one between the search and the kill."""
    stopped: set[int] = set()
    while True:
        found = [p for p in _descendants(child.pid) if p not in stopped]
        if child.poll() is None and child.pid not in stopped:
            found.append(child.pid)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
    for pid in stopped:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5)
    if child.stdout is not None:
        child.stdout.close()


def _descendants(root: int) -> list[int]:
    """Processes under ``root``, from ``/proc`` (empty where there is none)."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _child(spec_path: str) -> int:
    """The export process: render every job in one kaleido browser, printing ``ok <i>``
    after each file and ``error <why>`` (one line) before failing."""
    import asyncio
    import warnings

    spec = json.loads(Path(spec_path).read_text())

    async def render() -> None:
        import kaleido

        async with kaleido.Kaleido(
            path=spec["browser"], timeout=spec["timeout"], mathjax=False
        ) as k:
            for i, job in enumerate(spec["jobs"]):
                figure = json.loads(Path(job["figure"]).read_text())
                opts = {"format": job["format"], "scale": job["scale"]}
                await k.write_fig(figure, path=job["out"], opts=opts, cancel_on_error=True)
                print(f"ok {i}", flush=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asyncio.run(render())
    except Exception as exc:
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        lines = [line.strip() for line in first.splitlines() if line.strip()]
        print(f"error {type(exc).__name__}: {lines[0] if lines else 'no message'}", flush=True)
        return 1
    return 0


def _print_browser() -> int:
    """``--find``: print the browser kaleido would use, or why there is none (exit 1)."""
    browser, why = find_browser()
    print(browser or why)
    return 0 if browser else 1


if __name__ == "__main__":
    sys.exit(_print_browser() if sys.argv[1:] == ["--find"] else _child(sys.argv[1]))
