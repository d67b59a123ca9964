"""dcgan.files: whole-file writes, the write probe, an error in one line."""

from __future__ import annotations

import pytest

from dcgan.files import ERROR_CHARS, atomic_write, one_line, write_probe


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    atomic_write(target, "old")

    def half(tmp: str) -> None:
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
    atomic_write(tmp_path / "new" / "b.bin", b"\x00\x01")
    assert (tmp_path / "new" / "b.bin").read_bytes() == b"\x00\x01"


def test_the_probe_writes_where_os_access_would_say_yes_to_root(tmp_path):
    assert write_probe(tmp_path / "not" / "yet") is None  # its nearest existing parent is writable
    (tmp_path / "f").write_text("")
    assert "not a folder" in write_probe(tmp_path / "f" / "x")
    assert write_probe("/proc/x") is not None  # read-only even for root


def test_one_line():
    assert one_line(ValueError("bad\n   value")) == "bad value"
    ray_error = "Traceback (most recent call last):\n  File \"x.py\", line 1\n\nValueError: lr_g must be > 0\n"
    assert one_line(ray_error) == "ValueError: lr_g must be > 0"
    assert one_line(KeyError()) == "KeyError" and len(one_line("x" * 1000)) == ERROR_CHARS
