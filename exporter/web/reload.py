"""The web config file followed while the server runs, so certificates rotate without a restart.

Like exporter-toolkit, which reads its file on every request, the settings are checked for each new
connection: a stat of the file and of the certificate, key and CA files it names (their change time,
size and inode, so an in-place rewrite, a rename over and a Kubernetes Secret's symlink swap are all
seen). A changed file is loaded in full; a broken one keeps the running settings and says why in one
log line, once per broken version. reload() re-reads at once, for a SIGHUP handler.
"""

from __future__ import annotations

import logging
import os
import threading

from exporter.web.config import ServerOptions, WebConfig, WebConfigError, load_web_config

log = logging.getLogger(__name__)

# Per watched file: (mtime in ns, size, inode), or None when it cannot be stat'ed.
Signature = tuple[tuple[int, int, int] | None, ...]


def _files(config: WebConfig) -> tuple[str, ...]:
    files = [config.path]
    if config.tls is not None:
        files += [config.tls.cert_file, config.tls.key_file]
        if config.tls.client_ca_file is not None:
            files.append(config.tls.client_ca_file)
    return tuple(files)


def _signature(files: tuple[str, ...]) -> Signature:
    marks: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            marks.append(None)
        else:
            marks.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(marks)


class WebConfigFile:
    """A --web.config.file: loaded at start (raising WebConfigError), then re-read when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._config = load_web_config(path)
        self._options = self._config.server_options()
        self._files = _files(self._config)
        self._loaded = _signature(self._files)
        self._broken: Signature | None = None

    def options(self) -> ServerOptions:
        """The settings for a new connection, re-read first if a watched file has changed."""
        seen = _signature(self._files)
        if seen != self._loaded and seen != self._broken:
            self._load(seen)
        return self._options

    def reload(self) -> bool:
        """Re-read the file now; False when it is invalid (the running settings stay, the log says why)."""
        return self._load(_signature(self._files))

    def _load(self, seen: Signature) -> bool:
        with self._lock:
            try:
                config = load_web_config(self.path)
            except WebConfigError as exc:
                self._broken = seen
                log.warning(
                    "web config not reloaded, still serving with the previous one: %s",
                    "; ".join(exc.problems),
                )
                return False
            options = config.server_options()
            if config.users == self._config.users and "authenticate" in self._options:
                # Same users: keep the authenticator, and with it the credentials already verified.
                options["authenticate"] = self._options["authenticate"]
            files = _files(config)
            # `seen` was taken before loading, so a file rewritten during the load is loaded again next
            # time; files new to this version can only be stat'ed now.
            self._loaded = seen if files == self._files else _signature(files)
            self._config, self._options, self._files = config, options, files
            self._broken = None
            log.info("web config reloaded", extra={"path": self.path, "tls": config.tls is not None})
            return True
