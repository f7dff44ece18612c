"""`pullprint demo` as a new user runs it: any state folder, real file names, the console, a crash of its cupsd, Ctrl-C.

One demo is started as a subprocess in a `mktemp -d` folder (mode 0700) and driven from outside,
the way the README's tour does it. On a machine whose cupsd crashes on document names with
spaces (Debian's 2.4.2-3+deb12u10, docs/cups.md) the test proves the demo notices, cancels the
saved job that would crash cupsd again, and comes back; elsewhere it proves such names just print.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from cups_backend.doctor import probe_whitespace_crash
from tests.e2e.conftest import wait_for

PULLPRINT = str(Path(sys.executable).with_name("pullprint"))


def _processes_of(folder: Path) -> list[str]:
    """Processes whose command line or environment names `folder`: what the demo must not leave behind."""
    found = []
    needle = str(folder).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found.append(proc.name + ": " + cmdline.replace(b"\0", b" ").decode(errors="replace")[:160])
    return found


def _cupsd_pid(state: Path) -> int | None:
    conf = str(state / "cupsd" / "etc" / "cupsd.conf").encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"cupsd") and conf in argv:
                return int(proc.name)
    return None


class Demo:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.log_path = state.parent / f"{state.name}.console"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([PULLPRINT, "demo", "--state-dir", str(state), "--collectors", "2"],
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.info = wait_for(self._cluster_json, 180, f"the demo to start:\n{self.console()}")

    def _cluster_json(self):
        assert self.process.poll() is None, f"the demo exited:\n{self.console()}"
        path = self.state / "cluster.json"
        return json.loads(path.read_text()) if path.exists() else None

    def console(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "CUPS_SERVER": self.info["cups_server"]}

    def lp(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["lp", "-U", "alice", "-d", self.info["queue"], *args], env=self.env(), input=stdin,
                              capture_output=True, timeout=30, check=False)

    def cupsd_answers(self) -> bool:
        return subprocess.run(["lpstat", "-r"], env=self.env(), capture_output=True, timeout=10,
                              check=False).returncode == 0

    def held_titles(self) -> dict[str, str]:
        alice = self.info["users"][0]
        answer = requests.post(f"{self.info['lb_url']}/api/v1/sessions", timeout=10, verify=self.info["ca_file"],
                               json={"printer": self.info["printers"][0]["id"], "badge": alice["badge"]})
        assert answer.status_code == 201, answer.text
        return {job["title"]: job["id"] for job in answer.json()["jobs"]}

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        code = self.process.wait(90)
        self.log.close()
        return code


def _tls(demo: Demo) -> dict:
    """What a client of the demo's analyst needs, from cluster.json: the CA and the operator's certificate."""
    return {"verify": demo.info["ca_file"], "cert": (demo.info["admin_cert"]["cert"], demo.info["admin_cert"]["key"])}


@pytest.fixture(scope="module")
def demo():
    if os.geteuid() != 0:
        pytest.skip("the demo's cupsd needs root here")
    state = Path(tempfile.mkdtemp(prefix="pullprint-demo-"))  # 0700, as `mktemp -d` makes it
    assert state.stat().st_mode & 0o777 == 0o700
    running = Demo(state)
    yield running
    running.stop()
    subprocess.run(["rm", "-rf", str(state), str(running.log_path)], check=False)


@pytest.mark.e2e
def test_the_demo_opens_its_console_and_an_ipp_printer(demo) -> None:
    console = demo.info["console"]
    assert console["url"] == f"{demo.info['lb_url']}/console"  # behind HAProxy, like everything public

    def sign_in(password: str) -> requests.Response:
        browser = requests.Session()
        trust = {"verify": demo.info["ca_file"]}  # per call: REQUESTS_CA_BUNDLE would override a session's
        form = browser.get(f"{console['url']}/login", timeout=10, **trust)
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = browser.post(f"{console['url']}/login", data={"csrf": token, "name": console["user"],
                                                              "password": password}, timeout=10, **trust)
        return answer

    page = sign_in(console["password"])
    assert page.status_code == 200 and "pullprint console" in page.text and 'id="collector-c1"' in page.text
    assert sign_in("wrong").status_code == 401
    assert console["password"] in demo.console()  # printed with the other instructions
    assert any(p["uri"].startswith("ipp://") for p in demo.info["printers"])


@pytest.mark.e2e
def test_each_printer_has_a_kiosk_link_that_enrols_its_release_station(demo) -> None:
    """printers[i]["kiosk_url"]: the one-time enrolment link of that printer's web release station
    (tests/browser opens one in Chromium); the code redeems once, for that printer."""
    lb = demo.info["lb_url"]
    printers = demo.info["printers"]
    assert all(p["kiosk_url"].startswith(f"{lb}/release/enroll#code=") for p in printers)
    assert printers[0]["kiosk_url"] in demo.console()  # what to try names the first one
    page, _, fragment = printers[-1]["kiosk_url"].partition("#")
    assert requests.get(page, timeout=10, verify=demo.info["ca_file"]).status_code == 200
    code = fragment.removeprefix("code=")
    enrol = lambda: requests.post(f"{lb}/api/v1/terminals/enroll", json={"code": code}, timeout=10,  # noqa: E731
                                  verify=demo.info["ca_file"])
    first = enrol()
    assert first.status_code == 201 and first.json()["terminal"]["printer"] == printers[-1]["id"]
    assert enrol().status_code == 403


@pytest.mark.e2e
def test_file_names_with_accents_and_quotes_are_held(demo, tmp_path) -> None:
    document = tmp_path / "Bericht_für_Zürich's_\"Q3\".txt"
    document.write_text("umlauts and quotes\n")
    assert demo.lp(str(document)).returncode == 0
    wait_for(lambda: document.name in demo.held_titles(), 30, "the job to be held")
    assert demo.cupsd_answers()


@pytest.mark.e2e
def test_quarterly_report_is_released_to_the_ipp_printer(demo) -> None:
    data = b"Quarterly report: revenue up\n" + os.urandom(2000).hex().encode()
    # The title travels as job-name, which every cupsd carries safely; the body comes on stdin.
    assert demo.lp("-t", "Quarterly report", stdin=data).returncode == 0
    job_id = wait_for(lambda: demo.held_titles().get("Quarterly report"), 30, "Quarterly report to be held")
    ipp = next(p for p in demo.info["printers"] if p["uri"].startswith("ipp://"))
    alice = demo.info["users"][0]
    session = requests.post(f"{demo.info['lb_url']}/api/v1/sessions", timeout=10, verify=demo.info["ca_file"],
                            json={"printer": ipp["id"], "badge": alice["badge"]}).json()["session"]
    answer = requests.post(f"{demo.info['lb_url']}/api/v1/sessions/{session}/release", json={"jobs": [job_id]},
                           headers={"Idempotency-Key": "demo-quarterly"}, timeout=60,
                           verify=demo.info["ca_file"]).json()
    assert answer["results"][0]["status"] == "printed", answer
    sink = Path(ipp["sink_dir"])
    [prn] = [p for p in sink.glob("*.prn") if p.read_bytes() == data]
    assert json.loads(prn.with_suffix(".json").read_text())["job_name"] == "Quarterly\u00a0report"


@pytest.mark.e2e
def test_a_name_with_spaces_prints_or_the_demo_recovers_from_the_crash(demo, tmp_path) -> None:
    document = tmp_path / "Quarterly report.txt"
    document.write_text("spaces in the name\n")
    if not probe_whitespace_crash().affected:
        assert demo.lp(str(document)).returncode == 0
        wait_for(lambda: document.name in demo.held_titles(), 30, "the job to be held")
        return
    # The crash: cupsd dies at once, the job with it; the demo says so and starts cupsd again.
    before = _cupsd_pid(demo.state)
    demo.lp(str(document))
    wait_for(lambda: "cupsd" in demo.console() and "restarted" in demo.console(), 20, "the demo to restart cupsd")
    wait_for(demo.cupsd_answers, 20, "cupsd to answer again")
    assert _cupsd_pid(demo.state) not in (None, before)
    # A poison job: saved while the queue was stopped, it would crash cupsd at every start.
    members = [f"{demo.info['queue']}-{i}" for i in range(1, 5)]
    subprocess.run(["cupsdisable", *members], env=demo.env(), check=True, capture_output=True)
    assert demo.lp(str(document)).returncode == 0
    spool = demo.state / "cupsd" / "spool"
    # cupsd writes a new job's control file within about 30 s (or when it stops): wait for it.
    wait_for(lambda: list(spool.glob("c0*")), 60, "cupsd to save the waiting job")
    subprocess.run(["cupsenable", *members], env=demo.env(), check=False, capture_output=True)
    # cupsd is down by then, so the demo removes the saved job's files and names whose job it was.
    wait_for(lambda: "removed job" in demo.console() and 'of alice ("Quarterly report.txt")' in demo.console(), 30,
          f"the demo to cancel the poison job:\n{demo.console()}")
    wait_for(demo.cupsd_answers, 20, "cupsd to answer after the poison job was cancelled")
    time.sleep(3)
    assert demo.cupsd_answers()  # and it stays up: no crash loop


@pytest.mark.e2e
def test_dead_parts_are_reported_and_sigterm_stops_everything(demo) -> None:
    pid = wait_for(lambda: _cupsd_pid(demo.state), 20, "the demo's cupsd")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: f"cupsd (pid {pid}) died: killed by SIGKILL" in demo.console(), 10, "the demo to report it")
    wait_for(demo.cupsd_answers, 20, "cupsd to be restarted")
    collector = demo.info["collectors"][0]
    os.killpg(collector["pid"], signal.SIGKILL)  # the whole node, as the fault tests do
    wait_for(lambda: f"collector {collector['id']} (pid {collector['pid']}) died: killed by SIGKILL" in demo.console(),
          10, "the demo to report the dead collector")
    assert demo.stop() == 0
    assert "stopping" in demo.console()
    wait_for(lambda: not _processes_of(demo.state), 15, "every process the demo started to be gone")
    assert _processes_of(demo.state) == []
