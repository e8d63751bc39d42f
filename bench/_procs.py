"""/proc readings and process-group handling shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def fields_cpu_s(fields: list[str]) -> float:
    """utime+stime (all threads) from ``stat_fields``, in seconds."""
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_cpu_s(pid: int) -> float:
    """utime+stime of one live process, in seconds; OSError once it is gone."""
    return fields_cpu_s(stat_fields(pid))


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Stop a process started with start_new_session=True, and everything it spawned."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
