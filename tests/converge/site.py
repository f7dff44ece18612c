"""A whole site on testbed hosts: the wheels, the hosts (scripts/testbed), the inventory, and site.yml runs.

The hosts are Debian 12 containers with systemd as PID 1, one network namespace and address each on a
private bridge, reached by Ansible over SSH as production hosts are. Pullprint comes from a wheel built
from this checkout (`pullprint_wheel`); its dependencies from a wheelhouse the testbed serves on the
bridge (built once per pyproject.toml, here on the control node), never from an index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
TESTBED = ROOT / "scripts" / "testbed"
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("TESTBED_CACHE", "/var/cache/pullprint-testbed"))

# The site: inventory groups per host. The analyst host also carries its PostgreSQL.
HOSTS: dict[str, list[str]] = {
    "analyst1": ["analyst", "database"],
    "redis1": ["redis"],
    "c1": ["collectors"],
    "c2": ["collectors"],
    "c3": ["collectors"],
    "lb1": ["lb"],
    "print1": ["print_servers"],
    "ws1": ["workstations"],
    "printers1": ["printers"],
    "c4": ["collectors"],
}
# Built with the others but left out of the inventory until a test adds it (`Site.enlist`).
SPARE = {"c4"}
OPERATOR = "converge-test"
# The pullprint CLI on a host, and the analyst's settings for it on analyst1 (as its unit has them).
PULLPRINT = "/opt/pullprint/venv/bin/pullprint"
ANALYST_ENV = ("PULLPRINT_CONFIG=/etc/pullprint/analyst.json "
               "PULLPRINT_ANALYST_BADGE_PEPPER_FILE=/etc/pullprint/secrets/badge_pepper "
               "PULLPRINT_ANALYST_DB_PASSWORD_FILE=/etc/pullprint/secrets/analyst_db_password")
GROUPS = ["analyst", "database", "redis", "collectors", "lb", "print_servers", "workstations", "printers"]
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)"
                   r"\s+ignored=(?P<ignored>\d+)", re.M)


def can_build_hosts() -> str | None:
    """Why this machine cannot build testbed hosts, or None when it can."""
    if os.geteuid() != 0:
        return "building hosts needs root (network namespaces, overlay mounts, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "ip", "ssh"):
        if not shutil.which(tool):
            return f"{tool} is missing (scripts/run setup installs systemd-container, debootstrap, openssh-client)"
    if not (BIN / "ansible-playbook").exists():
        return "ansible-core is not installed in this virtualenv"
    return None


@dataclass
class Run:
    """One ansible-playbook run: its output, the recap per host, and how long it took."""

    returncode: int
    output: str
    seconds: float
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, key: str) -> int:
        return sum(host[key] for host in self.recap.values())

    def changed_tasks(self) -> list[str]:
        """`changed: [host]` lines with the task each belongs to (what a second run should not have)."""
        out, task = [], ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed:"):
                out.append(f"{task}: {line}")
        return out


def record(name: str, result: dict[str, Any]) -> None:
    """Keep a converge figure as JSON in $PULLPRINT_CONVERGE_RESULTS (docs/operations.md quotes them)."""
    out = os.environ.get("PULLPRINT_CONVERGE_RESULTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name.replace(' ', '_')}.json").write_text(json.dumps(result, indent=1) + "\n")


def _wheelhouse() -> tuple[Path, Path]:
    """(the served wheelhouse of pullprint's dependencies, a dir with the pullprint wheel of this checkout)."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    deps = CACHE / f"wheels-{key}"
    source = CACHE / "source"
    # A copy of the checkout: building in place would leave build/ in the work tree.
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                                ".*_cache", "state", "pki", "tests"))
    if not (deps / ".complete").exists():
        shutil.rmtree(deps, ignore_errors=True)
        partial = deps.with_name(deps.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([str(BIN / "pip"), "wheel", "-q", "--wheel-dir", str(partial), f"{source}[all]"],
                       check=True, capture_output=True, text=True, timeout=1800)
        for own in partial.glob("pullprint-*.whl"):
            own.unlink()
        (partial / ".complete").write_text(key + "\n")
        partial.rename(deps)
    dist = CACHE / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run([str(BIN / "pip"), "wheel", "-q", "--no-deps", "--wheel-dir", str(dist),
                    str(source)], check=True, capture_output=True, text=True, timeout=600)
    return deps, dist


def next_version_wheel(version: str) -> Path:
    """A wheel of this checkout numbered `version` (what a release would be): from the copy `_wheelhouse` made."""
    source, dist = CACHE / f"source-{version}", CACHE / f"dist-{version}"
    for old in (source, dist):
        shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(CACHE / "source", source)
    for name, key in (("pyproject.toml", "version"), ("pullprint/__init__.py", "__version__")):
        path = source / name
        text, count = re.subn(rf'^{key} = "[^"]+"', f'{key} = "{version}"', path.read_text(), count=1, flags=re.M)
        assert count == 1, f"no version line in {name}"
        path.write_text(text)
    subprocess.run([str(BIN / "pip"), "wheel", "-q", "--no-deps", "--wheel-dir", str(dist), str(source)],
                   check=True, capture_output=True, text=True, timeout=600)
    return next(dist.glob(f"pullprint-{version}-*.whl"))


class Site:
    """The testbed hosts of one site and the Ansible runs onto them. `down()` removes every host."""

    def __init__(self, testbed_id: str, workdir: Path) -> None:
        self.id = testbed_id
        self.workdir = workdir
        self.state: dict[str, Any] = {}
        self.wheel: Path | None = None
        self.runs: list[Run] = []
        self.timings: dict[str, float] = {}
        self.first: Run | None = None
        self.enlisted = [host for host in HOSTS if host not in SPARE]  # the hosts in the inventory
        self.overrides: dict[str, Any] = {}

    # --- hosts ---
    def testbed(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(TESTBED), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def up(self) -> None:
        started = time.monotonic()
        deps, dist = _wheelhouse()
        self.wheel = next(dist.glob("pullprint-*.whl"))
        self.timings["wheels"] = time.monotonic() - started
        started = time.monotonic()
        result = self.testbed("up", "--id", self.id, "--hosts", ",".join(HOSTS), "--serve", str(deps))
        if result.returncode != 0:
            raise RuntimeError(f"testbed up failed:\n{result.stderr[-4000:]}")
        self.state = json.loads(result.stdout)
        self.timings["hosts"] = time.monotonic() - started
        self.write_inventory()

    def attach(self) -> None:
        """Take up a testbed that `up` built earlier (its state and wheel), e.g. to run the tests again."""
        self.state = json.loads((Path(os.environ.get("TESTBED_STATE", "/var/lib/pullprint-testbed")) / self.id
                                 / "state.json").read_text())
        self.wheel = next((CACHE / "dist").glob("pullprint-*.whl"))
        self.timings = {"wheels": 0.0, "hosts": 0.0}
        self.write_inventory()

    def down(self) -> str:
        result = self.testbed("down", "--id", self.id, timeout=300)
        return result.stderr if result.returncode != 0 else ""

    @property
    def lb_url(self) -> str:
        return f"https://{self.address('lb1')}:8080"

    @property
    def ca_file(self) -> str:
        return str(self.workdir / "pki" / "ca.pem")

    @property
    def admin_cert(self) -> tuple[str, str]:
        """The operator's certificate the CA role issued (administration at the analyst and collectors)."""
        base = self.workdir / "pki" / "issued" / "operators" / f"admin-{OPERATOR}"
        return str(base.with_suffix(".pem")), str(base.with_suffix(".key"))

    @property
    def analyst_url(self) -> str:
        return f"https://{self.address('analyst1')}:8700"

    def sink(self, printer: str) -> dict[str, str]:
        """The SHA-256 of each document the simulated printer `printer` received, by file name."""
        out = self.ssh("printers1", f"cd /var/lib/pullprint/printers/sinks/{printer} && sha256sum *.prn 2>/dev/null",
                       check=False, timeout=300).stdout
        return {name: digest for digest, name in (line.split() for line in out.splitlines())}

    def address(self, host: str) -> str:
        return str(self.state["hosts"][host]["address"])

    def ssh(self, host: str, command: str, *, check: bool = True, timeout: float = 120,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        home = self.state["dir"]
        argv = ["ssh", "-i", f"{home}/id_ed25519", "-o", f"UserKnownHostsFile={home}/known_hosts",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"root@{self.address(host)}", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"{host}: {command!r} exited {result.returncode}:\n{result.stdout[-2000:]}"
                                 f"\n{result.stderr[-2000:]}")
        return result

    # --- inventory ---
    def write_inventory(self) -> None:
        """The site's inventory, the test's vault (random secrets, a file only this user reads) and settings."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = []
        for group in GROUPS:
            lines.append(f"[{group}]")
            lines += [f"{h} ansible_host={self.address(h)}" for h in self.enlisted if group in HOSTS[h]]
            lines.append("")
        ssh_args = (f"-o UserKnownHostsFile={self.state['dir']}/known_hosts -o StrictHostKeyChecking=yes "
                    "-o ControlMaster=auto -o ControlPersist=120s")
        lines += ["[all:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={self.state['dir']}/id_ed25519",
                  f"ansible_ssh_common_args='{ssh_args}'", "ansible_become_method=su",
                  "ansible_python_interpreter=/usr/bin/python3", ""]
        (self.workdir / "inventory.ini").write_text("\n".join(lines))
        vault = self.workdir / "vault.json"
        if not vault.exists():
            vault.touch(mode=0o600)
            vault.write_text(json.dumps({
                "pullprint_installation_key": secrets.token_hex(32),
                "pullprint_session_key": secrets.token_hex(32),
                "pullprint_badge_pepper": secrets.token_hex(32),
                "pullprint_redis_collector_password": secrets.token_hex(24),
                "pullprint_redis_collector_key": secrets.token_hex(32),
                "pullprint_redis_admin_password": secrets.token_hex(24),
                "pullprint_analyst_db_password": secrets.token_hex(24)}))
        self.write_settings()

    def enlist(self, host: str) -> None:
        """Put a spare host into the inventory, in its groups (the next playbook run converges it)."""
        self.enlisted.append(host)
        self.write_inventory()

    def write_settings(self, **overrides: Any) -> None:
        """The playbook's extra settings; `overrides` stay for the later runs (a rolling upgrade's wheel)."""
        self.overrides.update(overrides)
        settings = {
            "pullprint_ca_dir": str(self.workdir / "pki"),
            "pullprint_ca_cli": str(BIN / "pullprint"),
            "pullprint_ca_operators": [OPERATOR],
            "pullprint_wheel": str(self.wheel),
            # Plain HTTP on the private bridge, from the testbed's own helper.
            "pullprint_pip_extra_args": f"--no-index --find-links {self.state['files_url']} "
                                        f"--trusted-host {self.state['gateway']}",
            # The wheelhouse has pycups built: the hosts need no compiler or headers.
            "pullprint_common_packages": ["python3-venv", "python3-packaging"],
            **self.overrides}
        (self.workdir / "settings.json").write_text(json.dumps(settings, indent=1))

    # --- Ansible ---
    def playbook(self, *args: str, timeout: float = 1800, playbook: str = "site.yml") -> Run:
        env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_FORKS": "10", "ANSIBLE_PIPELINING": "1",
               "ANSIBLE_HOST_KEY_CHECKING": "1", "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-local"),
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / "cp"),
               # Every line with its time: where a converge spends its minutes.
               "ANSIBLE_LOG_PATH": str(self.workdir / f"ansible-{len(self.runs) + 1}.log"),
               "PATH": f"{BIN}:/usr/sbin:/sbin:{os.environ.get('PATH', '')}"}
        started = time.monotonic()
        result = subprocess.run(
            ["nice", "-n", "10", str(BIN / "ansible-playbook"), "-i", str(self.workdir / "inventory.ini"),
             "-e", f"@{self.workdir / 'vault.json'}", "-e", f"@{self.workdir / 'settings.json'}", *args,
             str(ANSIBLE / playbook)],
            capture_output=True, text=True, cwd=ANSIBLE, env=env, timeout=timeout, check=False)
        run = Run(result.returncode, result.stdout + result.stderr, time.monotonic() - started)
        for m in RECAP.finditer(result.stdout):
            run.recap[m["host"]] = {k: int(v) for k, v in m.groupdict().items() if k != "host"}
        self.runs.append(run)
        (self.workdir / f"run-{len(self.runs)}.log").write_text(run.output)
        return run
