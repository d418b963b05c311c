"""Cookie ids after a fork that runs no at-fork hook (uWSGI forks in C): the child must
not hand out the ids its parent had drawn in advance (docs/delivery.md, "Processes and
fork": ids are per process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import ctypes, json, os
    from affy_middleware.attribution.cookies import new_id

    new_id()  # the parent draws a batch in advance (as a master that served a landing)
    r, w = os.pipe()
    pid = ctypes.PyDLL(None).fork()  # in C: no os.register_at_fork hook runs
    if pid == 0:
        os.write(w, json.dumps([new_id() for _ in range(10)]).encode())
        os._exit(0)
    os.close(w)
    child = json.loads(os.read(r, 65536))
    os.waitpid(pid, 0)
    print(json.dumps({"parent": [new_id() for _ in range(10)], "child": child}))
    """
)


def test_a_hookless_fork_never_hands_out_its_parents_ids(tmp_path: Path) -> None:
    script = tmp_path / "fork_ids.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout)
    assert len(set(ids["parent"]) | set(ids["child"])) == 20, "the same id in both processes"
