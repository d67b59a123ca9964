"""Where a user's storage may be written: the names of its folders, and a real write test.

An experiment's name (`search.run --name`) and a run's (`search.train --name`) are one folder of
the storage they were given; a report (`reports.build -o`) goes where a file can be created.
"""

from __future__ import annotations

import re
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
