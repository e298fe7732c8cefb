"""The workbook's cache folder, and data-set folders built in it once.

:func:`cache_dir` is where generated data (``cache_dir()/"data"``) and learner files go.
:func:`build_once` builds a folder atomically: written into a temporary sibling, renamed into place
when complete, with a marker file (``.generated.json``) that records how it was built; a folder
whose marker does not match (half-written, or built with other parameters) is rebuilt, and
concurrent callers never see a half-written one.  The embedded synthetic set
(:mod:`workbook.synthetic`) and samples of real Imagenette (:func:`workbook.data.make_subset`) are
built this way; :func:`read_marker` reads what a folder's marker says.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "build_once", "read_marker"]

_MARKER = ".generated.json"


def cache_dir() -> Path:
    """Folder for generated data and learner files.

    Returns:
        ``$WORKBOOK_CACHE`` when that environment variable is set and non-empty, else
        ``<repo root>/.cache``.  The folder is not created here.
    """
    override = os.environ.get("WORKBOOK_CACHE", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[1] / ".cache"


def read_marker(root: Path) -> dict | None:
    """What the marker of a folder built by :func:`build_once` records, or None when it has none."""
    try:
        return json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def _marker_matches(root: Path, params: dict) -> bool:
    """Whether `root` is complete and was built with `params` (every key equal in its marker)."""
    marker = read_marker(root)
    return marker is not None and all(marker.get(key) == value for key, value in params.items())


def build_once(root: Path, params: dict, write) -> Path:
    """Build the folder `root` once with ``write(empty folder) -> marker dict``; reuse a complete one.

    The folder is written into a temporary sibling and renamed into place only when complete, with a
    marker file recording `params` (and what `write` returns); a folder without a matching marker
    (half-written, or built with other parameters) is rebuilt.  Concurrent callers never see a
    half-written folder.
    """
    if _marker_matches(root, params):
        return root
    parent = root.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=parent))
    staging.chmod(0o755)        # mkdtemp makes it owner-only; the data set must be readable by all
    try:
        marker = {**write(staging), **params}
        (staging / _MARKER).write_text(json.dumps(marker, indent=1))   # written last: means complete
        if root.exists():
            if _marker_matches(root, params):                            # another process finished first
                return root
            stale = Path(tempfile.mkdtemp(prefix=f".{root.name}.stale-", dir=parent))
            try:
                os.replace(root, stale / "old")
            except FileNotFoundError:                                     # another process moved it
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(staging, root)
        except OSError:
            if not _marker_matches(root, params):                        # lost a race to a complete copy
                raise
        return root
    finally:
        shutil.rmtree(staging, ignore_errors=True)

