"""Is a run's process still alive? On the same host its pid is checked (a zombie counts as dead), so a killed run
reads `interrupted` at once; from another host (a runs folder shared over the network) its heartbeat decides: the
process running a notebook beats every `PULSE_S` seconds, and a run silent for `STALE_AFTER_S` counts as dead."""

from __future__ import annotations

import datetime as _dt
import socket
from typing import Any

import psutil

from lab.utils import parse_time

HOST = socket.gethostname()
PULSE_S = 30.0  # how often a running notebook's kernel beats (lab.session)
STALE_AFTER_S = 300.0  # a 'running' run with no heartbeat for this long (pid not checkable) is interrupted


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host is alive (psutil: Linux, macOS, Windows); a zombie (killed, not yet reaped
    by its parent, as happens in containers whose init never reaps) is dead."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


def effective_status(status: dict[str, Any], now_s: float | None = None, stale_after: float = STALE_AFTER_S,
                     pulse: float | None = None) -> str:
    """The status to show for a status record: a 'running' run whose process is gone is 'interrupted'.

    Same host: the recorded pid is checked. Another host (shared runs/ on a cluster): a heartbeat (the status's,
    or `pulse`, the time of the latest beat of the run's kernel) older than `stale_after` seconds counts as dead.
    """
    s = status.get("status", "unknown")
    if s != "running":
        return s
    if status.get("host") == HOST and status.get("pid"):
        return s if pid_alive(int(status["pid"])) else "interrupted"
    beats = [b for b in (parse_time(status.get("heartbeat")), pulse) if b is not None]
    beat = max(beats) if beats else None
    if beat is not None and (now_s or _dt.datetime.now().timestamp()) - beat > stale_after:
        return "interrupted"
    return s
