"""Which process holds a folder's lock, for the error that says so: Linux lists every flock in /proc/locks.

A line there reads `1: FLOCK  ADVISORY  WRITE 8961 fe:00:2171113 0 EOF`: the pid that took the lock,
then the locked inode as device major:minor (hex) and inode number. Elsewhere (or if /proc is not
mounted) the owner cannot be told and the message simply says "another process".
"""

from __future__ import annotations

import os
from pathlib import Path

LOCKS = Path("/proc/locks")
COMMAND_CHARS = 120  # of the owner's command line in the message


def lock_owner(path: str | Path) -> str:
    """' (pid PID: COMMAND)' for the process holding an flock on path, or '' when it cannot be told."""
    try:
        st = os.stat(path)
        lines = LOCKS.read_text().splitlines()
    except OSError:
        return ""
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields and inode in fields:  # "->" marks a waiter, not the holder
            pid = fields[fields.index(inode) - 1]
            return f" (pid {pid}{_command(pid)})" if pid.isdigit() else ""
    return ""


def _command(pid: str) -> str:
    """': COMMAND' of a live process (its arguments joined by spaces, shortened), or ''."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    command = " ".join(a.decode("utf-8", "replace") for a in argv)
    return f": {command[:COMMAND_CHARS]}{'...' if len(command) > COMMAND_CHARS else ''}" if command else ""
