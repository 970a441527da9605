"""Stdio strings are told apart: empty, FIFO path, or log URI with its data store."""

from __future__ import annotations

import hashlib

import pytest

from nerdlab import stdio
from nerdlab.stdio import (
    address_hash,
    check_data_store,
    classify_stdio,
    repair_fmt_missing,
)

ENCODED = "%2Fvar%2Flib%2Fnerdctl%2F1935db59"


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(stdio.__all__) == sorted(
        [
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
    )


KINDS = [
    pytest.param("", "empty", None, None, id="empty"),
    pytest.param("   ", "empty", None, None, id="blank"),
    pytest.param(
        "/run/containerd/fifo/345658729/f26c-stdin",
        "fifo",
        None,
        "/run/containerd/fifo/345658729/f26c-stdin",
        id="containerd-fifo",
    ),
    pytest.param(
        "/var/run/docker/containerd/d8c1/init-stdout",
        "fifo",
        None,
        "/var/run/docker/containerd/d8c1/init-stdout",
        id="docker-fifo",
    ),
    pytest.param(
        f"binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING={ENCODED}",
        "log-uri",
        "binary",
        "/usr/local/bin/nerdctl",
        id="nerdctl-binary",
    ),
    pytest.param("file:///home/123.txt", "log-uri", "file", "/home/123.txt", id="file"),
    pytest.param("fifo:///run/x", "log-uri", "fifo", "/run/x", id="fifo-scheme"),
    pytest.param(
        "binary:///opt/logger/logger.py",
        "log-uri",
        "binary",
        "/opt/logger/logger.py",
        id="ctr-logger",
    ),
    pytest.param("relative/path", "other", None, None, id="relative"),
    pytest.param("C:\\x", "other", None, None, id="windows-drive"),
]


@pytest.mark.parametrize(("value", "kind", "scheme", "path"), KINDS)
def test_classify(value: str, kind: str, scheme: str | None, path: str | None) -> None:
    """Each stdio string gets its kind, scheme and path."""
    found = classify_stdio(value)
    assert (found.kind, found.scheme, found.path) == (kind, scheme, path)


def test_nerdctl_log_uri_query_is_decoded() -> None:
    """The logging URI's query gives the data store, URL-decoded."""
    found = classify_stdio(f"binary:///x/nerdctl?_NERDCTL_INTERNAL_LOGGING={ENCODED}")
    assert found.query == (("_NERDCTL_INTERNAL_LOGGING", "/var/lib/nerdctl/1935db59"),)
    assert found.data_store == "/var/lib/nerdctl/1935db59"
    assert not found.mangled


def test_fmt_mangled_uri_is_repaired() -> None:
    """The ``%!F(MISSING)`` form of case 04 still yields the data store."""
    mangled = (
        "binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING="
        "%!F(MISSING)var%!F(MISSING)lib%!F(MISSING)nerdctl%!F(MISSING)1935db59"
    )
    found = classify_stdio(mangled)
    assert (found.kind, found.scheme, found.data_store, found.mangled) == (
        "log-uri",
        "binary",
        "/var/lib/nerdctl/1935db59",
        True,
    )
    assert found.raw == mangled


def test_repair_leaves_unknown_verbs() -> None:
    """A verb with no likely escape stays as it was."""
    assert repair_fmt_missing("a%!Q(MISSING)b") == ("a%!Q(MISSING)b", False)


def test_fifo_dir() -> None:
    """A FIFO's directory is where a listing should show it."""
    assert classify_stdio("/run/containerd/fifo/1/x-stdout").fifo_dir == (
        "/run/containerd/fifo/1"
    )
    assert classify_stdio("binary:///x").fifo_dir is None


HASHES = [
    pytest.param("/run/containerd/containerd.sock", "1935db59", id="default"),
    pytest.param(
        "unix:///run/containerd/containerd.sock", "1935db59", id="unix-scheme"
    ),
    pytest.param(
        "/run/user/1000/containerd.sock",
        hashlib.sha256(b"/run/user/1000/containerd.sock").hexdigest()[:8],
        id="other",
    ),
]


@pytest.mark.parametrize(("address", "expected"), HASHES)
def test_address_hash(address: str, expected: str) -> None:
    """The data store hash is sha256 of the address without unix://, 8 digits."""
    assert address_hash(address) == expected


CHECKS = [
    pytest.param(
        "/var/lib/nerdctl/1935db59",
        None,
        ("1935db59", "default", True),
        id="default-matches",
    ),
    pytest.param(
        "/var/lib/nerdctl/1935db59/",
        "/run/k3s/containerd/containerd.sock",
        ("1935db59", "run", False),
        id="other-address-differs",
    ),
    pytest.param(None, None, (None, "default", None), id="no-store"),
]


@pytest.mark.parametrize(("store", "address", "want"), CHECKS)
def test_check_data_store(
    store: str | None, address: str | None, want: tuple[object, ...]
) -> None:
    """The check says the store's hash, where the address came from, and a verdict."""
    check = check_data_store(store, address)
    assert (check.value, check.address_source, check.matches) == want
