"""Where a report goes: checked before any work, written whole (temp file, then rename)."""

from __future__ import annotations

import os
import posixpath

import pyarrow.fs as pafs

from dcgan.files import atomic_write, write_probe
from experiment import ExperimentError, is_uri


class OutputError(ExperimentError):
    """The report cannot be written there; the message says where it could go."""


def check_writable(target: str) -> None:
    """Fail now, before the experiment is read, if `target` cannot be written."""
    if is_uri(target):
        try:
            fs, path = pafs.FileSystem.from_uri(target)
            parent = fs.get_file_info(posixpath.dirname(path))
        except (ValueError, OSError) as e:
            raise OutputError(f"cannot write {target}: {' '.join(str(e).split())}") from None
        # Object stores have no real directories, so only a local-like parent is checked.
        if isinstance(fs, pafs.LocalFileSystem) and parent.type != pafs.FileType.Directory:
            raise OutputError(f"cannot write {target}: its directory does not exist; create it or pass -o elsewhere")
        if isinstance(fs, pafs.LocalFileSystem):
            check_writable(path)
        return
    path = os.path.abspath(target)
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise OutputError(f"cannot write {target}: it is a directory; pass a file name such as {target}/report.html")
    if not os.path.isdir(parent):
        raise OutputError(f"cannot write {target}: directory {parent} does not exist; create it or pass -o elsewhere")
    why = write_probe(parent)  # (the file itself is replaced by a rename: its folder is what counts)
    if why is None and os.path.exists(path) and not os.access(path, os.W_OK):
        why = "permission denied"
    if why:
        raise OutputError(f"cannot write {target} ({why}); pass -o FILE somewhere writable")


def write_text(target: str, text: str) -> None:
    """Write the whole file or nothing: a reader never sees half a report."""
    data = text.encode("utf-8")
    if is_uri(target):
        fs, path = pafs.FileSystem.from_uri(target)
        tmp = f"{path}.tmp"
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)
        return
    atomic_write(os.path.abspath(target), data)
