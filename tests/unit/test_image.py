"""The busybox image archive is well formed, and only a static busybox goes in."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import struct
import tarfile
from pathlib import Path

import pytest

from nerdlab import image
from nerdlab.image import DEFAULT_IMAGE, build_image_archive, is_static_elf, main


def static_busybox() -> Path:
    """Return a static busybox from the system, or skip."""
    found = shutil.which("busybox")
    if found is None or not is_static_elf(Path(found)):
        pytest.skip("no static busybox installed (busybox-static)")
    return Path(found)


def dynamic_binary() -> Path:
    """Return a dynamically linked system binary, or skip."""
    for candidate in ("/bin/ls", "/usr/bin/env", "/bin/sh"):
        path = Path(candidate).resolve()
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            return path
    pytest.skip("no ELF system binary found")


def elf_header(*, is64: bool, little: bool, interp: bool) -> bytes:
    """Return a minimal ELF file with one program header, PT_INTERP or PT_LOAD."""
    order = "<" if little else ">"
    p_type = 3 if interp else 1
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1]) + bytes(9)
    if is64:
        header = ident + bytes(0x20 - 16) + struct.pack(f"{order}Q", 64)
        header += bytes(0x36 - len(header)) + struct.pack(f"{order}HH", 56, 1)
        header += bytes(64 - len(header))
        return header + struct.pack(f"{order}I", p_type) + bytes(52)
    header = ident + bytes(0x1C - 16) + struct.pack(f"{order}I", 52)
    header += bytes(0x2A - len(header)) + struct.pack(f"{order}HH", 32, 1)
    header += bytes(52 - len(header))
    return header + struct.pack(f"{order}I", p_type) + bytes(28)


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(image.__all__) == [
        "DEFAULT_IMAGE",
        "build_image_archive",
        "is_static_elf",
        "main",
    ]


def test_static_busybox_is_static() -> None:
    """The distribution's static busybox has no program interpreter."""
    assert is_static_elf(static_busybox())


def test_dynamic_binary_is_not_static() -> None:
    """A dynamically linked system binary has a program interpreter."""
    assert not is_static_elf(dynamic_binary())


ELF_FORMS = [
    pytest.param(True, True, False, True, id="elf64-le-static"),
    pytest.param(True, True, True, False, id="elf64-le-dynamic"),
    pytest.param(True, False, False, True, id="elf64-be-static"),
    pytest.param(True, False, True, False, id="elf64-be-dynamic"),
    pytest.param(False, True, False, True, id="elf32-le-static"),
    pytest.param(False, True, True, False, id="elf32-le-dynamic"),
    pytest.param(False, False, True, False, id="elf32-be-dynamic"),
]


@pytest.mark.parametrize(("is64", "little", "interp", "static"), ELF_FORMS)
def test_is_static_elf_reads_every_class_and_byte_order(
    tmp_path: Path, is64: bool, little: bool, interp: bool, static: bool
) -> None:
    """32- and 64-bit headers in either byte order are read for a PT_INTERP."""
    path = tmp_path / "elf"
    path.write_bytes(elf_header(is64=is64, little=little, interp=interp))
    assert is_static_elf(path) is static


def test_script_is_not_static(tmp_path: Path) -> None:
    """A file that is not ELF is never taken for a static executable."""
    path = tmp_path / "busybox"
    path.write_text("#!/bin/sh\necho busybox\n")
    assert not is_static_elf(path)


def read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            member.name: (tar.extractfile(member) or io.BytesIO()).read()
            for member in tar.getmembers()
            if member.isfile()
        }


def test_archive_layout_and_digests(tmp_path: Path) -> None:
    """The archive holds both manifests and blobs named by their sha256."""
    busybox = static_busybox()
    out = tmp_path / "image.tar"
    config_digest = build_image_archive(out, busybox, "example.test/bb:v1")
    files = read_archive(out)
    blobs = {n: d for n, d in files.items() if n.startswith("blobs/sha256/")}
    assert set(files) - set(blobs) == {"manifest.json", "index.json", "oci-layout"}
    assert len(blobs) == 3
    for name, data in blobs.items():
        assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1], name
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}

    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "example.test/bb:v1"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    manifest_blob = files[f"blobs/sha256/{entry['digest'].split(':')[1]}"]
    assert entry["size"] == len(manifest_blob)
    manifest = json.loads(manifest_blob)
    assert manifest["config"]["digest"] == config_digest

    (docker,) = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == ["example.test/bb:v1"]
    assert docker["Config"] == f"blobs/sha256/{config_digest.split(':')[1]}"
    assert docker["Layers"] == [
        f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"
    ]

    layer_gz = files[docker["Layers"][0]]
    layer = gzip.decompress(layer_gz)
    config = json.loads(files[docker["Config"]])
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    assert config["rootfs"]["diff_ids"] == [diff_id]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/busybox"].size == busybox.stat().st_size
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777


def test_archive_is_reproducible(tmp_path: Path) -> None:
    """Two builds from the same busybox are byte for byte the same."""
    busybox = static_busybox()
    build_image_archive(tmp_path / "a.tar", busybox)
    build_image_archive(tmp_path / "b.tar", busybox)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_dynamic_binary_is_refused(tmp_path: Path) -> None:
    """A dynamic busybox is refused, naming the package to install instead."""
    out = tmp_path / "image.tar"
    with pytest.raises(
        ValueError, match="not a static executable; install the busybox"
    ):
        build_image_archive(out, dynamic_binary())
    assert not out.exists()


def test_main_prints_the_config_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line writes the archive and prints the config digest."""
    busybox = static_busybox()
    out = tmp_path / "image.tar"
    assert main([str(out), "--busybox", str(busybox)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == build_image_archive(tmp_path / "again.tar", busybox)
    (docker,) = json.loads(read_archive(out)["manifest.json"])
    assert docker["RepoTags"] == [DEFAULT_IMAGE]


def test_main_reports_a_dynamic_binary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line turns a refusal into one line on stderr and status 1."""
    assert main([str(tmp_path / "x.tar"), "--busybox", str(dynamic_binary())]) == 1
    assert capsys.readouterr().err.startswith("nerdlab.image: ")
