"""Real Imagenette from fastai's servers, failing within seconds when the machine is offline.

:func:`download_imagenette` hands the URL to fastai's ``untar_data`` (archive and extracted folder
under ``$FASTAI_HOME/data``, downloaded once).  Before a download it opens one TCP connection to
the server (or the proxy urllib would use), so that an offline machine gets a one-line error with
the two ways out (the embedded set, or a local copy in ``IMAGENETTE_PATH``) instead of a long hang.
:func:`workbook.data.get_imagenette` decides whether a download is needed at all.
"""
from __future__ import annotations

import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from fastai.data.external import fastai_path, untar_data

__all__ = ["check_imagenette_folder", "download_imagenette"]

_CONNECT_TIMEOUT_S = 3.0


def check_imagenette_folder(path: Path, origin: str) -> Path:
    """`path` when it holds ``train/`` and ``val/``, else a FileNotFoundError that names `origin` and `path`."""
    missing = [name for name in ("train", "val") if not (path / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{origin} {path} is not an imagenette2 folder: it has no {' or '.join(m + '/' for m in missing)} "
            "subfolder. Point it at the extracted folder that holds train/ and val/ "
            "(e.g. .../imagenette2-160).")
    return path


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy urllib would use for this URL, if any."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return (parts.hostname, parts.port or 80) if parts.hostname else None


def _unreachable_reason(url: str, timeout: float = _CONNECT_TIMEOUT_S) -> str | None:
    """None if a TCP connection to the URL's host (or its proxy) opens within `timeout`, else why not.

    The DNS look-up has no timeout of its own, so the whole attempt runs in a daemon thread.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return f"the URL {url!r} has no host"
    address = _proxy_for(parts.scheme, parts.hostname) or \
        (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"{type(error).__name__}: {error}")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {address[0]}:{address[1]} within {timeout:.0f} s"


def _extracted_folder(url: str) -> Path:
    """Where fastai's untar_data puts the archive's contents (mirrors fastdownload's naming)."""
    archive_name = Path(urllib.parse.urlsplit(url).path).name
    return fastai_path("data") / Path(archive_name).stem.removesuffix(".tar")


def download_imagenette(name: str, url: str) -> Path:
    """The extracted folder of the Imagenette archive at `url`, downloaded by fastai when not there yet.

    Args:
        name: the data set's name in messages ("160", "320", "full").
        url: the archive's URL.

    Raises:
        ConnectionError: a download is needed and the server cannot be reached (within seconds).
        FileNotFoundError: the archive holds no ``train/`` or ``val/`` folder.
    """
    extracted = _extracted_folder(url)
    if not extracted.exists():     # untar_data would download: fail fast and helpfully when offline
        reason = _unreachable_reason(url)
        if reason is not None:
            raise ConnectionError(
                f"Cannot download Imagenette {name!r} from {url}: {reason}. This machine seems to be "
                "offline (or the server is down).\n"
                "Either use the embedded synthetic data set, which needs no download: get_imagenette()\n"
                "or download and extract the archive on a connected machine, copy the folder here and set "
                "the environment variable IMAGENETTE_PATH to it (the folder holding train/ and val/).")
    return check_imagenette_folder(Path(untar_data(url)), "The downloaded archive")

