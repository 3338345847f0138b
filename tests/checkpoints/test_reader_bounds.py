"""Issue 12 audit: a small crafted checkpoint cannot make the reader claim much memory.

torch reads a zip record into a buffer of its declared size before checking it; a 1 MB archive
whose deflated entry of zeros declares 1 GB used to take 1 GB (and 10 s) before it was refused.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

MEASURE = """
import json, resource, sys
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.reader import read_checkpoint, read_training_checkpoint
reader = {"raw": read_checkpoint, "training": read_training_checkpoint}[sys.argv[2]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    reader(sys.argv[1])
    error = None
except CheckpointError as raised:
    error = str(raised)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"error": error, "grown_mb": grown}))
"""


def _zip_bomb(path: Path, megabytes: int) -> None:
    """A real torch.save archive whose storage record is replaced by deflated zeros."""
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(4)}}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            if not info.filename.endswith("data/0"):
                out.writestr(info, source.read(info))
                continue
            entry = zipfile.ZipInfo(info.filename)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with out.open(entry, "w", force_zip64=True) as handle:
                for _ in range(megabytes):
                    handle.write(bytes(1 << 20))


def _read(path: Path, which: str) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), which], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                                      "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_zip_entry_declaring_a_huge_size_is_refused_before_it_is_allocated(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pth"
    _zip_bomb(bomb, 512)
    assert bomb.stat().st_size < 1 << 20
    for which in ("raw", "training"):
        got = _read(bomb, which)
        assert got["error"] and str(bomb) in got["error"] and "'archive/data/0'" in got["error"], got
        assert "declare" in got["error"] and got["grown_mb"] < 64, got


def test_a_genuine_checkpoint_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.pth"
    torch.save({"model": {"w": torch.randn(1000)}}, path)
    assert _read(path, "raw")["error"] is None


def _legacy_claim(path: Path) -> None:
    """A legacy (non-zip) torch.save file whose storage declares 2**28 floats (1 GiB)."""
    import struct

    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(4)}}, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    at = data.index(b"X\x03\x00\x00\x00cpu") + 8 + 2  # the location string, its memo; then the numel
    assert data[at:at + 2] == b"K\x04"
    path.write_bytes(data[:at] + b"J" + struct.pack("<i", 1 << 28) + data[at + 2:])


def _safetensors_claim(path: Path) -> None:
    """A .safetensors header declaring a 1 GiB tensor over 64 bytes of data."""
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 28], "data_offsets": [0, 1 << 30]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(64))


def test_legacy_and_safetensors_size_claims_are_refused_without_allocating(tmp_path: Path) -> None:
    # torch checks a legacy storage's byte size, safetensors the header's offsets, before allocating
    for make, name in ((_legacy_claim, "legacy.pth"), (_safetensors_claim, "claim.safetensors")):
        path = tmp_path / name
        make(path)
        got = _read(path, "raw")
        assert got["error"] and str(path) in got["error"] and got["grown_mb"] < 64, got


def _corrupt_extra_field(path: Path, megabytes: int) -> None:
    """The zip bomb above, its storage entry's central-directory record given an extra field whose
    declared length runs past the record: Python's zipfile refuses the directory, torch's reader
    does not look at the field and inflates the entry."""
    import struct

    _zip_bomb(path, megabytes)
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while True:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        if bytes(data[at + 46:at + 46 + name_len]).endswith(b"data/0"):
            break
        at += 46 + name_len + extra_len + comment_len
    struct.pack_into("<H", data, at + 30, extra_len + 4)
    data[at + 46 + name_len + extra_len:at + 46 + name_len + extra_len] = struct.pack("<HH", 0xCAFE, 100)
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<I", data, end + 12, struct.unpack_from("<I", data, end + 12)[0] + 4)
    path.write_bytes(bytes(data))


def test_a_zip_directory_the_size_check_cannot_read_is_refused_before_torch_reads_it(tmp_path: Path) -> None:
    bomb = tmp_path / "bad-extra.pth"
    _corrupt_extra_field(bomb, 512)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(bomb).infolist()
    for which in ("raw", "training"):
        got = _read(bomb, which)
        assert got["error"] and str(bomb) in got["error"] and "zip directory" in got["error"], got
        assert "Corrupt extra field" in got["error"] and got["grown_mb"] < 64, got
