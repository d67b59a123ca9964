"""Local files written whole, a folder's write probe, an error in one line, and the names of a search's
two files that dcgan's commands read: the one copy of each, which every package imports (dcgan is the
bottom of the arrows)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

ERROR_CHARS = 300  # an error said in one line is cut there
# A search's folder holds EXPERIMENT_JSON, and once it has ended BEST_CONFIG_JSON (its winner's config
# and checkpoint), which `dcgan.sample` and `dcgan.evaluate` follow (experiment.layout writes both)
EXPERIMENT_JSON, BEST_CONFIG_JSON = "experiment.json", "best_config.json"


def one_line(error: object) -> str:
    """An error as one line: whitespace collapsed, at most ERROR_CHARS; of a traceback (Ray's error
    strings are), its last line, the exception itself."""
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:
        text = [ln for ln in text.splitlines() if ln.strip()][-1]
    return " ".join(text.split())[:ERROR_CHARS] or type(error).__name__


def atomic_write(target: Union[str, Path], data: Union[bytes, str, Callable[[str], None]], mode: int = 0o644) -> None:
    """`data` (bytes, text, or a function that writes the file it is given) written to a temporary
    file beside `target`, then renamed: a reader never sees half a file, and a failure leaves none."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, str)):
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if callable(data):
            data(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_probe(folder: Union[str, Path]) -> Optional[str]:
    """None if a file can be created in `folder`, or in its nearest existing parent when it does
    not exist yet; else why not. A real write: os.access says yes to root even on a read-only mount."""
    probe = os.path.abspath(os.path.expanduser(str(folder)))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"{probe} is not a folder"
    try:
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as e:
        return f"cannot write to {probe}: {e.strerror or e}"
    return None
