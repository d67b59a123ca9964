"""Where a user's storage may be written: the names of its folders, and a real write test.

An experiment's name (`search.run --name`) and a run's (`search.train --name`) are one folder of
the storage they were given; a report (`reports.build -o`) goes where a file can be created.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Optional

NAME = re.compile(r"[A-Za-z0-9._-]+")


def bad_name(name: str) -> Optional[str]:
    """Why `name` cannot name an experiment or a run, or None. A name is one folder of the storage:
    one that climbs out of it (`../x`) or into another (`a/b`) would reach a place the user did
    not give, on a shared disk or bucket someone else's."""
    if NAME.fullmatch(name) and ".." not in name and name != ".":
        return None
    return (f"{name!r} is not a name: it must be one folder of the storage, made of letters, digits, '.', '_' "
            f"and '-' (no '/', no '..')")


def check_writable_folder(folder: str) -> None:
    """OSError unless a file can be created in the local `folder` (or, where it does not exist yet,
    in its nearest existing parent, where it would be made). A real write: os.access says yes to
    root even on read-only mounts and /proc."""
    probe = os.path.abspath(os.path.expanduser(folder))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OSError(f"{probe} is not a folder")
    tempfile.TemporaryFile(dir=probe).close()
