"""Headless Chromium and JupyterLab servers for tests/test_browser.py.

Chromium comes from Debian's `chromium` package (`python -m tests.browser --install`, run by
`make browser-deps`); Playwright for Python drives it over the DevTools protocol, connected to a browser
this module starts itself, so that the test can stop it by its process group. Nothing is downloaded from
Playwright's own browser builds.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path(os.environ.get("WORKBOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APT_PACKAGES = ["chromium", "fonts-dejavu-core"]


def ensure_chromium() -> str | None:
    """Install Debian's chromium when it is missing and this process may; return why not, or None."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get); "
                f"install it with: apt-get install {' '.join(APT_PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-500:]}"
    return None if CHROMIUM.exists() else f"apt-get installed {APT_PACKAGES} but {CHROMIUM} is still missing"


def browser_test_setup(artifacts: Path):
    """Skip the calling test when Chromium or Playwright is missing; else empty `artifacts` (the test's
    screenshots and logs) and return playwright.sync_api."""
    import pytest

    why = ensure_chromium()
    if why:
        pytest.skip(why)
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt; run make setup")
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    return playwright


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Process ids of every live descendant of `pid` (from /proc; empty where /proc is missing)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a process started with start_new_session=True, its process group, and its descendants that
    live in groups of their own (Jupyter starts each kernel in a new session)."""
    others = {group for group in map(_pgid, descendants(proc.pid)) if group not in (None, proc.pid)}
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    for group in (proc.pid, *others):   # what outlived the leader: its group, kernels in their own groups
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@dataclass
class LabServer:
    """A JupyterLab server started by :func:`start_lab` (stop it with :meth:`stop`)."""
    proc: subprocess.Popen
    url: str
    token: str
    log: Path
    settings: Path = field(repr=False)

    def page_url(self, path: str) -> str:
        return f"{self.url}{path}{'&' if '?' in path else '?'}token={self.token}"

    def stop(self) -> None:
        stop_group(self.proc)


def start_lab(root: Path, cwd: Path, log: Path, env: dict, token: str, extra_args: tuple = ()) -> LabServer:
    """Start `jupyter lab` on 127.0.0.1 (free port, token) with notebook root `root`, in its own group.

    Its lab settings and workspaces live in a fresh folder, so neither the user's settings nor a saved
    layout change what the browser sees; news and update checks are off (no network, no pop-ups).
    """
    port = free_port()
    settings = Path(tempfile.mkdtemp(prefix="lab-settings-", dir=log.parent))
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # `-m jupyterlab`, not `-m jupyter lab`: the latter runs the `jupyter-lab` script, whose interpreter (its
    # #! line) can be another environment's when a virtual environment was copied; kernels follow it.
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={settings}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *extra_args]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    out = open(log, "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    out.close()
    return LabServer(proc, f"http://127.0.0.1:{port}", token, log, settings)


def wait_ready(server: LabServer, timeout: float = 90) -> None:
    """Wait until the server answers its status API, or fail with the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.page_url("/api/status"), timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"JupyterLab at {server.url} did not start (exit {server.proc.poll()}); "
                       f"log tail:\n{server.log.read_text()[-3000:]}")


def start_chromium(user_data: Path, log: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """Start headless Chromium in its own process group; return it and its DevTools websocket URL."""
    # Pages in the background keep running at full speed (two pages work at once in the test).
    cmd = [str(CHROMIUM), *CHROMIUM_ARGS, "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
           "--disable-backgrounding-occluded-windows", f"--user-data-dir={user_data}", "--remote-debugging-port=0",
           "--remote-debugging-address=127.0.0.1", "--window-size=1400,1000", "about:blank"]
    err = open(log, "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    err.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"DevTools listening on (ws://\S+)", log.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_group(proc)
    raise RuntimeError(f"Chromium did not open its DevTools port; stderr tail:\n{log.read_text()[-3000:]}")


def pixel_stats(png: Path) -> tuple[int, float]:
    """(number of distinct colours, fraction of pixels that are not near-white) of a screenshot."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
    colours = len(rgb.getcolors(rgb.width * rgb.height))  # in C; numpy's unique(axis=0) sorts: 2 s a shot
    not_white = float((np.asarray(rgb).min(axis=2) < 235).mean())
    return colours, not_white


if __name__ == "__main__":
    if sys.argv[1:] != ["--install"]:
        sys.exit("usage: python -m tests.browser --install")
    why = ensure_chromium()
    if why:
        print(f"warning: {why}; tests/test_browser.py will be skipped", file=sys.stderr)
    else:
        print(subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True).stdout.strip()
              or f"{CHROMIUM} present")
