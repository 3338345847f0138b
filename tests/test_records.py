"""`mae_transfer.records`: the one atomic writer and the typed run records."""

from __future__ import annotations

import errno
import json
import re
import subprocess
from pathlib import Path

import pytest

from mae_transfer import records
from mae_transfer.records import ProgressRecord, Validation

REPO = Path(__file__).resolve().parents[1]


def test_atomic_write_json_replaces_whole_file_and_leaves_no_tmp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.json"
    records.atomic_write_json(path, {"b": 1, "a": [1, 2]})
    records.atomic_write_json(path, {"c": 3})
    assert json.loads(path.read_text()) == {"c": 3}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_failed_write_keeps_the_old_file_and_removes_the_tmp(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    records.atomic_write_json(path, {"old": 1})
    with pytest.raises(RuntimeError):
        with records.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(path.read_text()) == {"old": 1} and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_full_disk_is_an_oserror_naming_the_target_with_its_errno(tmp_path: Path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "replace", full)
    with pytest.raises(OSError) as raised:
        records.atomic_write_text(tmp_path / "x.json", "{}")
    assert raised.value.errno == errno.ENOSPC and str(tmp_path / "x.json") in str(raised.value)
    assert "No space left on device" in str(raised.value) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_mode_a_plain_open_would_give(tmp_path: Path, umask: int) -> None:
    """result.json, state.json and cell.json are read by teammates on a shared cluster: mkstemp's
    0600 must not survive the rename; the umask decides, as for any file the user writes."""
    import os
    import stat

    previous = os.umask(umask)
    try:
        fresh = records.atomic_write_json(tmp_path / "result.json", {"a": 1})
        with records.atomic_path(tmp_path / "cell.json") as tmp:
            tmp.write_text("{}")
        records.atomic_write_text(tmp_path / "result.json", "{}")  # a rewrite too
    finally:
        os.umask(previous)
    for path in (fresh, tmp_path / "cell.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, (path, oct(path.stat().st_mode))


def test_validations_replace_a_redone_step_and_drop_later_ones(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        records.record_validation(tmp_path, Validation(step=step, epoch=step // 2, metrics={"top1": float(step)}))
    # a resumed attempt validates step 4 again: the old 4 and the lost 6 go
    rows = records.record_validation(tmp_path, Validation(step=4, epoch=2, metrics={"top1": 40.0}))
    assert [(r.step, r.metrics["top1"]) for r in rows] == [(2, 2.0), (4, 40.0)]
    assert records.read_validations(tmp_path) == rows


def test_progress_and_load_report_round_trip(tmp_path: Path) -> None:
    progress = ProgressRecord(step=40, total=300, epoch=0, time=1.0, eta_seconds=90.0, latest={"top1": 5.0})
    records.write_progress(tmp_path, progress)
    assert records.read_progress_record(tmp_path) == progress
    (tmp_path / records.PROGRESS_NAME).write_text("{half")
    assert records.read_progress_record(tmp_path) is None
    summary = {"format": "mae", "matched": 10, "missing": 0, "dropped": 2, "resized": 1}
    records.write_load_report(tmp_path, summary)
    assert records.read_load_report(tmp_path) == summary


def test_records_module_imports_no_mm_package() -> None:
    source = (REPO / "mae_transfer" / "records.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+(mm\w+|torch)", source, re.MULTILINE)


def test_one_atomic_writer_in_the_package() -> None:
    found = subprocess.run(["grep", "-rlE", r"os\.replace|os\.rename|mkstemp|fsync", str(REPO / "mae_transfer"),
                            "--include=*.py"], capture_output=True, text=True).stdout.split()
    # the fault-injection points fsync on purpose what they leave half written (not a writer)
    deliberate = {"mae_transfer/failpoints.py", "mae_transfer/integrations/failpoints.py"}
    assert sorted({Path(p).relative_to(REPO).as_posix() for p in found} - deliberate) == ["mae_transfer/records.py"]
