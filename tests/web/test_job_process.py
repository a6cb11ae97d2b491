"""The background-job process never outlives the server that spawned it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from synthgate.config import Settings
from tests.conftest import start_server


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the parent id follows the state.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_job_process_exits_when_the_server_is_killed(settings: Settings) -> None:
    server = start_server(settings, SYNTHGATE_SCHEDULER="true")
    try:
        children: list[int] = []

        def spawned() -> bool:
            # multiprocessing's resource tracker is a child too; the job worker runs spawn_main.
            children[:] = [
                child
                for child in _children(server.process.pid)
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
            ]
            return bool(children)

        assert _wait_for(spawned, 30), "the scheduler never started its job process"
        os.kill(server.process.pid, signal.SIGKILL)  # no shutdown handler runs
        server.process.wait()
        assert _wait_for(lambda: not any(_alive(child) for child in children), 10), (
            "the job process outlived its server"
        )
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
