"""Is a run's process still alive? On the same host its pid is checked (a zombie counts as dead); from another
host (a runs folder shared over the network) a heartbeat older than a bound counts as dead."""

from __future__ import annotations

import datetime as _dt
import os
import socket
from typing import Any

from lab.utils import parse_time

HOST = socket.gethostname()
STALE_AFTER_S = 2 * 3600.0  # a 'running' run with no heartbeat for this long (pid not checkable) is interrupted


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host is alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(status: dict[str, Any], now_s: float | None = None, stale_after: float = STALE_AFTER_S) -> str:
    """The status to show for a status record: a 'running' run whose process is gone is 'interrupted'.

    Same host: the recorded pid is checked. Another host (shared runs/ on a cluster): a heartbeat older than
    `stale_after` seconds counts as dead.
    """
    s = status.get("status", "unknown")
    if s != "running":
        return s
    if status.get("host") == HOST and status.get("pid"):
        return s if pid_alive(int(status["pid"])) else "interrupted"
    beat = parse_time(status.get("heartbeat"))
    if beat is not None and (now_s or _dt.datetime.now().timestamp()) - beat > stale_after:
        return "interrupted"
    return s
