"""Classify the stdio strings a containerd task was created with.

A task's Stdin/Stdout/Stderr are plain strings: empty (no stream), an absolute FIFO
path (``/run/containerd/fifo/<n>/<id>-stdout``), or a log URI whose scheme tells the
shim how to deliver output (``binary:///usr/local/bin/nerdctl?...``). Attach can only
open the FIFO kind; telling the three apart is most of the diagnosis.

nerdctl's log URI carries its data store, ``<data root>/<hash>``, where the hash is
the first eight hex digits of sha256 of the containerd address without ``unix://``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "DATA_STORE_QUERY_KEY",
    "DEFAULT_ADDRESS",
    "HashCheck",
    "Stdio",
    "StdioKind",
    "address_hash",
    "check_data_store",
    "classify_stdio",
    "repair_fmt_missing",
]

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
DATA_STORE_QUERY_KEY = "_NERDCTL_INTERNAL_LOGGING"

StdioKind = Literal["empty", "fifo", "log-uri", "other"]


@dataclass(frozen=True, slots=True)
class Stdio:
    """What one stdio string is, and for a log URI what it points at."""

    raw: str
    kind: StdioKind
    scheme: str | None = None
    path: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    data_store: str | None = None
    mangled: bool = False

    @property
    def fifo_dir(self) -> str | None:
        """The directory of a FIFO path (where ``ls -la`` should show a ``p``)."""
        if self.kind != "fifo":
            return None
        return self.raw.rsplit("/", 1)[0] or "/"


@dataclass(frozen=True, slots=True)
class HashCheck:
    """Whether a data store's basename is the hash of the containerd address."""

    value: str | None
    address: str
    address_source: str
    expected: str
    matches: bool | None


# RFC 3986 scheme: a letter, then letters, digits, "+", "-" or "."; one-letter
# schemes are left out so that a Windows drive ("C:\...") is not read as a URI.
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):")

# Go fmt prints a "%2F" met in a format string as "%!F(MISSING)" (width 2, verb F,
# no operand). The width is lost; these are the escapes a URL-encoded path produces.
_FMT_MISSING = re.compile(r"%!(?P<verb>[A-Za-z])\(MISSING\)")
_LIKELY_ESCAPE = {"F": "%2F", "A": "%3A", "D": "%3D", "B": "%2B", "C": "%2C"}


def repair_fmt_missing(text: str) -> tuple[str, bool]:
    """Undo Go fmt's ``%!F(MISSING)`` damage to a URL-escaped string where it can.

    Returns the repaired text and whether anything was replaced.
    """
    repaired = _FMT_MISSING.sub(
        lambda match: _LIKELY_ESCAPE.get(match["verb"], match.group(0)), text
    )
    return repaired, repaired != text


def classify_stdio(value: str) -> Stdio:
    """Say whether ``value`` is empty, a FIFO path or a log URI, and parse a URI."""
    raw = value.strip()
    if not raw:
        return Stdio(raw=value, kind="empty")
    if raw.startswith("/"):
        return Stdio(raw=value, kind="fifo", path=raw)
    if _SCHEME.match(raw) is None:
        return Stdio(raw=value, kind="other")
    repaired, mangled = repair_fmt_missing(raw)
    parts = urlsplit(repaired)
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    data_store = dict(query).get(DATA_STORE_QUERY_KEY)
    path = parts.path or None
    if parts.netloc and parts.scheme != "file":
        path = f"//{parts.netloc}{parts.path}"
    return Stdio(
        raw=value,
        kind="log-uri",
        scheme=parts.scheme.lower(),
        path=path,
        query=query,
        data_store=data_store,
        mangled=mangled,
    )


def address_hash(address: str) -> str:
    """Return nerdctl's data store hash for a containerd address.

    nerdctl also resolves symlinks in the socket path first; that needs the live
    socket, so an address that is a symlink has to be given resolved.
    """
    plain = address.removeprefix("unix://")
    return hashlib.sha256(plain.encode()).hexdigest()[:8]


def check_data_store(
    data_store: str | None, address: str | None = None, *, source: str = "run"
) -> HashCheck:
    """Compare a data store's basename with the hash of ``address``.

    Without an address, containerd's default socket is assumed and the result says
    ``address_source="default"``.
    """
    if address is None:
        address, source = DEFAULT_ADDRESS, "default"
    expected = address_hash(address)
    value = data_store.rstrip("/").rsplit("/", 1)[-1] if data_store else None
    return HashCheck(
        value=value,
        address=address,
        address_source=source,
        expected=expected,
        matches=None if value is None else value == expected,
    )
