"""The CUPS backend's start stays cheap: cupsd starts it afresh for every job, so what it imports is paid
per job (issue 13). Not a timed test: it checks *which* modules a fresh interpreter holds after the
backend's entry module, its discovery run and a job's run, in a subprocess started the way the
installed backend's shebang starts it (`-I -S`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cups_backend.install import INTERPRETER_FLAGS, backend_script

ROOT = Path(__file__).resolve().parents[2]

# Heavy, and never needed before a job is under way (or never at all): http.client pulls in the email
# package; dataclasses (pullprint.wire's JobSubmission) pulls in inspect, ast, dis and tokenize; typing
# pulls in contextlib; site is the venv's .pth files and the editable install's finder; the rest are
# third-party packages the backend must not depend on, or big parts of the standard library.
NEVER = {"http", "http.client", "email", "email.parser", "dataclasses", "inspect", "ast", "typing", "contextlib",
         "pullprint.wire", "shutil", "threading", "tempfile", "random", "site", "sitecustomize", "cryptography",
         "cups", "requests", "redis", "flask", "pullprint.cli", "bz2", "lzma", "zipfile", "logging", "asyncio",
         "concurrent", "subprocess", "argparse"}
# Needed by a job, not by the entry module or discovery (cupsd runs discovery for `lpinfo -v`).
NOT_AT_START = {"ssl", "_ssl", "socket", "json", "re", "urllib.parse", "pathlib", "shlex", "signal",
                "pullprint.wire_headers", "cups_backend.config"}


def modules_after(code: str, *args: str) -> set[str]:
    """sys.modules of a fresh `python -I -S` (plus the repository on sys.path) after running `code`."""
    program = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{code}\n"
               "sys.stdout.write('\\n'.join(sorted(sys.modules)) + '\\n')\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", program, *args], capture_output=True, text=True,
                         timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_the_installed_backend_starts_its_interpreter_isolated_and_without_site() -> None:
    first = backend_script().splitlines()[0]
    assert first == f"#!{sys.executable} {INTERPRETER_FLAGS}"
    assert set(INTERPRETER_FLAGS.lstrip("-")) == {"I", "S"}  # one word: the kernel passes one argument
    assert "from cups_backend.backend import main" in backend_script()


def test_the_entry_module_imports_nothing_heavy() -> None:
    loaded = modules_after("import cups_backend.backend")
    assert "cups_backend.backend" in loaded
    assert loaded & (NEVER | NOT_AT_START) == set()


def test_discovery_imports_nothing_heavy() -> None:
    loaded = modules_after("from cups_backend.backend import main\nmain(['pullprints'], {})")
    assert loaded & (NEVER | NOT_AT_START) == set()


@pytest.mark.parametrize("scheme", ["pullprint", "pullprints"])
def test_a_job_imports_only_what_it_uses(tmp_path: Path, scheme: str) -> None:
    """A raw-queue job to a closed port (RETRY at once): config, the wire's headers and the socket, ssl only
    for TLS; not pullprint.wire itself (its dataclass costs more than the rest together)."""
    import socket

    from cups_backend.install import write_credentials

    write_credentials(tmp_path / "etc", "tok-test")
    document = tmp_path / "d00001-001"
    document.write_bytes(b"%!PS\n")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"DEVICE_URI": f"{scheme}://127.0.0.1:{port}/", "CUPS_SERVERROOT": str(tmp_path / "etc"),
           "PULLPRINT_BACKEND_RETRY_DELAYS": "0", "PULLPRINT_BACKEND_RETRY_BUDGET": "0"}
    code = (f"import io\nfrom cups_backend.backend import main\n"
            f"code = main(['pullprint', '1', 'alice', 't', '1', 'job-uuid=urn:uuid:1', {str(document)!r}], "
            f"{env!r}, stderr=io.StringIO())\nassert code == 6, code")
    loaded = modules_after(code)
    assert {"cups_backend.config", "pullprint.wire_headers", "socket"} <= loaded
    assert loaded & NEVER == set()
    assert ("ssl" in loaded) == (scheme == "pullprints")
