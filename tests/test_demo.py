"""``make demo`` and ``make serve``, run for real.

The main test runs ``make demo`` in a ``git clone`` of this repository at HEAD, so it
proves that the committed files alone (the Makefile target, ``examples/demo.py``, the
example shop and its templates, the library) make the demo work from a fresh clone.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest
from _helpers import close_process, read_lines

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"
#: Set to 1 to let `make demo` in the clone build its own venv with pip (slow, needs PyPI).
FULL_INSTALL = os.environ.get("AFFY_DEMO_FULL_INSTALL") == "1"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def _clone(dest: Path) -> Path:
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed to run `make demo` from a clone")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = dest / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return clone


def _venv_on_our_packages(clone: Path) -> None:
    """A new, empty venv in the clone that sees this venv's installed packages (flask,
    httpx, ...) through a .pth file, and the clone's own code first on sys.path."""
    venv = clone / ".venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    ours = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    (site / "affy-demo-test-deps.pth").write_text(ours + "\n")
    # The Makefile's install step is the one thing replaced: mark it done.
    (venv / ".installed-stamp").touch()


@pytest.mark.process
def test_make_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    """`make demo` in a temporary clone at HEAD.

    How the install step is handled (the honest, fast choice): by default the clone gets a
    brand-new venv made by `python -m venv` whose only link to the outside is a .pth file
    listing *this* venv's site-packages (flask, httpx, werkzeug...), and the Makefile's
    install stamp is touched so `make` skips `pip install`. Everything else is the clone's:
    the Makefile's demo target runs `.venv/bin/python examples/demo.py` from the clone,
    which imports the clone's `affy_middleware` and `examples/` (checked below), so a file
    that was never committed makes this test fail. The pip install itself is exercised by
    `make test` in CI, which starts from a fresh clone; set AFFY_DEMO_FULL_INSTALL=1 to run
    the real `make demo` with its own venv and pip install here too (needs PyPI; 28 s on
    the development machine with a warm pip cache, minutes without one).
    """
    clone = _clone(tmp_path)
    if not FULL_INSTALL:
        _venv_on_our_packages(clone)
        where = subprocess.run(
            [
                str(clone / ".venv" / "bin" / "python"),
                "-c",
                "import sys; sys.path.insert(0, '.'); import affy_middleware, "
                "examples.flask_shop as s; print(affy_middleware.__file__); print(s.__file__)",
            ],
            cwd=clone,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert where.returncode == 0, where.stderr
        for path in where.stdout.split():
            assert Path(path).resolve().is_relative_to(clone.resolve()), where.stdout
    run = subprocess.run(
        ["make", "demo"],
        cwd=clone,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600 if FULL_INSTALL else 120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "pip install" not in run.stdout or FULL_INSTALL
    assert "Traceback" not in output
    for step in range(1, 7):
        assert f"[{step}/6]" in run.stdout
    assert "the middleware set cookies:" in run.stdout
    assert re.search(r"affy_click_id=\S+", run.stdout)
    assert "Referred by aff_demo" in run.stdout
    table = run.stdout.split("Attribution recorded by the sandbox AFFY:")[1]
    rows = [line.split() for line in table.splitlines() if line.strip()]
    kinds = {row[0]: row for row in rows if row[0] in ("click", "registration", "payment")}
    assert set(kinds) == {"click", "registration", "payment"}
    assert all(row[1] == "aff_demo" for row in kinds.values())
    assert kinds["payment"][-1] == "49.00"
    assert "OK: affiliate aff_demo gets 1 click, 1 signup and $49.00 of payments" in run.stdout
    assert re.search(r"sandbox dashboard\s+http://127\.0\.0\.1:\d+/", run.stdout)
    assert "make serve" in run.stdout


def test_demo_fails_clearly_when_the_visitor_is_not_attributed() -> None:
    """An affiliate link landing with a parameter the shop does not know (`?partner=`):
    the visitor gets no cookie, and the demo says so in one line and exits 1."""
    code = "import sys, examples.demo as d; d.REF_PARAM = 'partner'; sys.exit(d.main([]))"
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("demo FAILED: GET /?partner=aff_demo")
    assert "set no attribution cookies" in run.stderr and "AFFY_REF_PARAMS" in run.stderr


def test_demo_is_not_spoilt_by_affy_variables_in_the_shell(tmp_path: Path) -> None:
    """A developer's own AFFY_* settings (tracking off, a cookie domain, a spool) neither
    break the demo nor receive its events."""
    spool = tmp_path / "my-app-spool.db"
    env = _env(
        AFFY_ENABLED="0",
        AFFY_COOKIE_DOMAIN="example.com",
        AFFY_SPOOL_PATH=str(spool),
        AFFY_REF_PARAMS="partner",
    )
    run = subprocess.run(
        [sys.executable, str(DEMO)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ignores your AFFY_COOKIE_DOMAIN, AFFY_ENABLED" in run.stdout
    assert not spool.exists()


@pytest.mark.process
def test_make_serve_keeps_shop_and_dashboard_up_until_ctrl_c() -> None:
    """`demo.py --serve` (what `make serve` runs), on free ports so it never collides."""
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--serve", "--shop-port", "0", "--sandbox-port", "0"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = read_lines(proc.stdout)
        seen: list[str] = []
        while not any("Serving until Ctrl-C" in line for line in seen):
            seen.append(lines.get(timeout=60))
        seen += [lines.get(timeout=10) for _ in range(3)]
        text = "".join(seen)
        shop = re.findall(r"Tiny Shop\s+(http://127\.0\.0\.1:\d+)/\?ref=aff_demo", text)[-1]
        dashboard = re.findall(r"sandbox dashboard\s+(http://127\.0\.0\.1:\d+/)", text)[-1]
        page = httpx.get(shop + "/pricing", timeout=10)
        assert page.status_code == 200 and "Tiny Shop" in page.text
        board = httpx.get(dashboard, timeout=10)
        assert board.status_code == 200 and "aff_demo" in board.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        close_process(proc)
