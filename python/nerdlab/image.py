"""Build a small container image from the distribution's static busybox.

No registry is reachable from many development and CI machines, so nerdlab can make
the image its scenarios need from what the distribution ships: one layer holding a
static busybox and the applet links a scenario uses, written as an image archive in
the ``docker save`` layout (``manifest.json`` plus an OCI ``index.json``) that
``nerdctl load`` reads. Standard library only: it runs on the target.

    python3 -m nerdlab.image OUT.tar [--busybox /bin/busybox] [--name REF]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import platform
import struct
import sys
import tarfile
from pathlib import Path

__all__ = ["DEFAULT_IMAGE", "build_image_archive", "is_static_elf", "main"]

DEFAULT_IMAGE = "nerdlab.local/busybox:latest"
APPLETS = (
    "sh",
    "echo",
    "sleep",
    "cat",
    "ls",
    "true",
    "false",
    "head",
    "tail",
    "yes",
    "dd",
    "wc",
    "seq",
    "date",
)
_PT_INTERP = 3
_FIXED_MTIME = 0


def is_static_elf(path: Path) -> bool:
    """Tell whether an ELF executable has no program interpreter (is static)."""
    with path.open("rb") as elf:
        header = elf.read(64)
        if header[:4] != b"\x7fELF":
            return False
        is64 = header[4] == 2
        order = "<" if header[5] == 1 else ">"
        if is64:
            (phoff,) = struct.unpack_from(f"{order}Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(f"{order}HH", header, 0x36)
        else:
            (phoff,) = struct.unpack_from(f"{order}I", header, 0x1C)
            phentsize, phnum = struct.unpack_from(f"{order}HH", header, 0x2A)
        for index in range(phnum):
            elf.seek(phoff + index * phentsize)
            (p_type,) = struct.unpack(f"{order}I", elf.read(4))
            if p_type == _PT_INTERP:
                return False
    return True


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes | None = None,
    mode: int = 0o755,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = _FIXED_MTIME
    info.mode = mode
    info.type = kind
    info.linkname = link
    info.size = len(data) if data is not None else 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _layer(busybox: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "dev", "etc", "proc", "sys", "tmp", "root"):
            _add(
                tar,
                directory,
                kind=tarfile.DIRTYPE,
                mode=0o1777 if directory == "tmp" else 0o755,
            )
        _add(tar, "bin/busybox", data=busybox)
        for applet in APPLETS:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n", mode=0o644)
        _add(tar, "etc/group", data=b"root:x:0:\n", mode=0o644)
    return raw.getvalue()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def build_image_archive(out: Path, busybox: Path, name: str = DEFAULT_IMAGE) -> str:
    """Write an image archive of ``busybox`` as ``name``; return its config digest."""
    if not is_static_elf(busybox):
        raise ValueError(
            f"{busybox} is not a static executable; install the busybox-static package"
        )
    layer_tar = _layer(busybox.read_bytes())
    layer_gz = gzip.compress(layer_tar, mtime=_FIXED_MTIME)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(
        platform.machine(), platform.machine()
    )
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
            "history": [
                {"created_by": "nerdlab: static busybox from the distribution"}
            ],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(layer_gz),
                    "size": len(layer_gz),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    blobs = {_digest(b).split(":", 1)[1]: b for b in (config, manifest, layer_gz)}
    docker_manifest = json.dumps(
        [
            {
                "Config": f"blobs/sha256/{_digest(config).split(':', 1)[1]}",
                "RepoTags": [name],
                "Layers": [f"blobs/sha256/{_digest(layer_gz).split(':', 1)[1]}"],
            }
        ]
    ).encode()
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "blobs", kind=tarfile.DIRTYPE)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE)
        for hexdigest, blob in blobs.items():
            _add(tar, f"blobs/sha256/{hexdigest}", data=blob, mode=0o644)
        _add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}', mode=0o644)
        _add(tar, "index.json", data=index, mode=0o644)
        _add(tar, "manifest.json", data=docker_manifest, mode=0o644)
    return _digest(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m nerdlab.image")
    parser.add_argument("out", type=Path)
    parser.add_argument("--busybox", type=Path, default=Path("/bin/busybox"))
    parser.add_argument("--name", default=DEFAULT_IMAGE)
    args = parser.parse_args(argv)
    try:
        digest = build_image_archive(args.out, args.busybox, args.name)
    except (OSError, ValueError) as err:
        print(f"nerdlab.image: {err}", file=sys.stderr)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
