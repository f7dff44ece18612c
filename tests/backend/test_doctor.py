"""`pullprint doctor`: the control-file parser, the crash probe and poison jobs, against the installed cupsd."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cups_backend import doctor
from cups_backend.doctor import ControlFileError, parse_ipp
from pullprint.cupsd import PrivateCupsd
from pullprint.daemons import free_port
from pullprint.errors import PullprintError

DATA = Path(__file__).resolve().parent.parent / "data" / "cups" / "spool"
PULLPRINT = str(Path(sys.executable).parent / "pullprint")


# --- building control files for the parser tests --------------------------------------------------

def attribute(tag: int, name: str, value: bytes | str | int) -> bytes:
    raw = struct.pack(">i", value) if isinstance(value, int) else value.encode() if isinstance(value, str) else value
    encoded = name.encode()
    return struct.pack(">BH", tag, len(encoded)) + encoded + struct.pack(">H", len(raw)) + raw


def control_file(*job_attributes: bytes, state: int = 3) -> bytes:
    """A job control file shaped as cupsd writes it: operation group, then the job group."""
    return (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x01"
            + attribute(0x47, "attributes-charset", "utf-8") + attribute(0x48, "attributes-natural-language", "en")
            + b"\x02" + attribute(0x42, "job-originating-user-name", "alice") + attribute(0x42, "job-name", "t")
            + attribute(0x23, "job-state", state) + b"".join(job_attributes) + b"\x03")


def spool_with(tmp_path: Path, *files: tuple[str, bytes]) -> Path:
    for name, data in files:
        (tmp_path / name).write_bytes(data)
    return tmp_path


# --- the parser ------------------------------------------------------------------------------------

def test_a_real_control_file_carries_the_document_name_as_document_name_supplied() -> None:
    message = doctor.read_control_file(DATA / "c00001")
    assert message.version == (2, 0)
    assert message.first("document-name-supplied", doctor.TAG_JOB) == "Quarterly report.txt"
    assert message.first("document-name") is None
    assert message.first("job-name", doctor.TAG_JOB) == "Quarterly report.txt"
    assert message.first("job-originating-user-name", doctor.TAG_JOB) == "alice"
    assert message.first("job-state", doctor.TAG_JOB) == 3
    assert str(message.first("job-printer-uri", doctor.TAG_JOB)).endswith("/printers/SecurePrint")
    assert {a.group for a in message.attributes} == {doctor.TAG_OPERATION, doctor.TAG_JOB}


def test_poison_jobs_in_a_real_spool_are_the_document_name_and_the_option_not_the_title(tmp_path) -> None:
    for path in DATA.iterdir():
        shutil.copy(path, tmp_path / path.name)
    jobs = {job.job_id: job for job in doctor.find_poison_jobs(tmp_path)}
    assert sorted(jobs) == [1, 2], "job 3 only has spaces in its title, which cupsd passes separately"
    first = jobs[1]
    assert (first.owner, first.title, first.document_name, first.queue) == (
        "alice", "Quarterly report.txt", "Quarterly report.txt", "SecurePrint")
    assert first.reason == "its document name contains a space"
    assert not first.hangs
    assert [p.name for p in first.files] == ["c00001", "d00001-001"]
    assert jobs[2].owner == "bob"
    assert jobs[2].document_name is None  # sent on stdin: no document name
    assert jobs[2].reason == "its option foo contains a space"


@pytest.mark.parametrize(("value", "reason", "hangs"), [
    ("Quarterly report.txt", "its document name contains a space", False),
    ("a\tb", "its document name contains a tab", False),
    ("a\nb", "its document name contains a line break", False),
    ("a\rb", "its document name contains a carriage return", False),
    ("a\x01b", "its document name contains a control character ('\\x01')", True),
    ("ab\x7f", "its document name contains a control character ('\\x7f')", True),
])
def test_each_breaking_character_is_named(tmp_path, value: str, reason: str, hangs: bool) -> None:
    spool = spool_with(tmp_path, ("c00007", control_file(attribute(0x42, "document-name-supplied", value))),
                       ("d00007-001", b"x"))
    [job] = doctor.find_poison_jobs(spool)
    assert (job.job_id, job.reason, job.hangs) == (7, reason, hangs)
    assert [p.name for p in job.files] == ["c00007", "d00007-001"]


@pytest.mark.parametrize("harmless", [
    attribute(0x42, "document-name-supplied", "a_b"),
    attribute(0x42, "document-name-supplied", "a\u00a0b"),  # NO-BREAK SPACE: fine on u10 (facts §7)
    attribute(0x42, "document-name-supplied", "Bericht_über_Zahlen.txt"),
    attribute(0x42, "job-originating-host-name", "localhost"),
    attribute(0x42, "job-hold-until", "no hold"),  # job-* other than four: cupsd does not pass it
    attribute(0x49, "document-format", "text/plain; charset=a b"),  # mimeMediaType: skipped by cupsd
    attribute(0x45, "printer-uri", "ipp://h/printers/a%20b c"),  # URIs other than job-uuid: skipped
    attribute(0x42, "time-at-x", "a b"),
])
def test_attributes_cupsd_does_not_pass_or_harmless_values_are_not_poison(tmp_path, harmless: bytes) -> None:
    spool = spool_with(tmp_path, ("c00001", control_file(harmless)))
    assert doctor.find_poison_jobs(spool) == []


def test_a_finished_job_is_not_poison(tmp_path) -> None:
    spool = spool_with(tmp_path, *[(f"c0000{state}", control_file(attribute(0x42, "document-name-supplied", "a b"),
                                                                  state=state)) for state in (7, 8, 9)])
    assert doctor.find_poison_jobs(spool) == []


def test_a_truncated_file_is_skipped_and_the_other_jobs_are_still_found(tmp_path, caplog) -> None:
    good = control_file(attribute(0x42, "foo", "a b"))
    spool = spool_with(tmp_path, ("c00001", good[:40]), ("c00002", good), ("c00003", b""))
    scan = doctor.scan_spool(spool)
    assert [job.job_id for job in scan.poison] == [2]
    assert len(scan.unreadable) == 2 and all("truncated" in problem for problem in scan.unreadable)
    assert "c00001" in scan.unreadable[0]


def test_every_prefix_of_a_real_control_file_is_a_clear_error() -> None:
    data = (DATA / "c00001").read_bytes()
    parse_ipp(data)
    for end in range(len(data)):
        with pytest.raises(ControlFileError):
            parse_ipp(data[:end])


@pytest.mark.parametrize(("data", "message"), [
    (b"\x09\x00" + bytes(6) + b"\x03", "not an IPP message"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + attribute(0x42, "a", "b") + b"\x03", "outside any attribute group"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x02" + attribute(0x42, "", "b") + b"\x03", "additional value"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x02" + attribute(0x21, "n", b"\x00\x01") + b"\x03", "not 4"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x02" + attribute(0x42, "\u00e9", "b") + b"\x03", "not ASCII"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x02" + b"\x42\x00\x01n\xff\xff" + b"x" * 10 + b"\x03", "truncated"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x02\x03" + b"junk", "after the end-of-attributes tag"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x00\x03", "delimiter tag 0x00"),
    (struct.pack(">BBHI", 2, 0, 5, 1) + b"\x02" + attribute(0x37, "x", b"") + b"\x03", "outside a collection"),
    (b"\x02\x00" + bytes(6) + b"\x02" + b"\x42\x00\x01n\x00\x01x" * 10, "no end-of-attributes"),
])
def test_malformed_files_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ControlFileError, match=message):
        parse_ipp(data)


def test_collections_parse_and_deep_nesting_is_refused() -> None:
    media_col = (attribute(0x34, "media-col", b"") + attribute(0x4A, "", "media-size")
                 + attribute(0x34, "", b"") + attribute(0x4A, "", "x-dimension") + attribute(0x21, "", 21000)
                 + attribute(0x37, "", b"") + attribute(0x4A, "", "media-type") + attribute(0x44, "", "plain")
                 + attribute(0x37, "", b""))
    message = parse_ipp(control_file(media_col, attribute(0x42, "after", "x")))
    [col] = [a for a in message.attributes if a.name == "media-col"]
    members = col.values[0]
    assert isinstance(members, tuple)
    size, kind = members
    assert size.name == "media-size" and size.values[0][0].values == (21000,)
    assert (kind.name, kind.values) == ("media-type", ("plain",))
    assert message.first("after") == "x"
    deep = attribute(0x34, "c", b"") + (attribute(0x4A, "", "m") + attribute(0x34, "", b"")) * 20
    with pytest.raises(ControlFileError, match="nested deeper"):
        parse_ipp(control_file(deep))


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path) -> None:
    path = tmp_path / "c00001"
    with open(path, "wb") as handle:
        handle.truncate(doctor.MAX_CONTROL_FILE_BYTES + 10)
    with pytest.raises(ControlFileError, match="more than a job control file holds"):
        doctor.read_control_file(path)


def test_random_damage_never_raises_anything_but_a_control_file_error() -> None:
    # hypothesis is not installed here; a seeded mutation loop covers the same ground reproducibly.
    originals = [path.read_bytes() for path in sorted(DATA.glob("c*"))]
    rng = random.Random(20261201)
    for _ in range(3000):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 8)):
            action = rng.random()
            position = rng.randrange(len(data)) if data else 0
            if action < 0.6 and data:
                data[position] = rng.randrange(256)
            elif action < 0.8:
                data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif data:
                del data[position:position + rng.randint(1, 16)]
        try:
            message = parse_ipp(bytes(data))
        except ControlFileError:
            continue
        doctor.poison_reason(message)  # whatever parsed must also be safe to judge


def test_a_crash_log_names_the_job_user_and_document(tmp_path) -> None:
    (tmp_path / "error_log").write_text(
        'I [01/Dec/2026:22:42:10 +0000] Loaded configuration file "/x/cupsd.conf"\n'
        "d [01/Dec/2026:22:42:10 +0000] cupsdProcessIPPRequest(0x1[3]): operation_id=0006(Send-Document)\n"
        "d [01/Dec/2026:22:42:10 +0000] cupsdProcessIPPRequest: document-name nameWithoutLanguage "
        "'Quarterly report.txt'\n"
        'I [01/Dec/2026:22:42:10 +0000] [Job 4] Queued on "SecurePrint" by "alice".\n'
        "D [01/Dec/2026:22:42:10 +0000] [Job 4] time-at-processing=1796164930\n"
        "D [01/Dec/2026:22:42:10 +0000] [Job 4] job-sheets=none,none\n")
    assert doctor.crash_culprit(tmp_path) == ('cupsd died while starting job 4 of alice on queue SecurePrint, '
                                              'document name "Quarterly report.txt"')
    with open(tmp_path / "error_log", "a") as log:
        log.write("I [01/Dec/2026:22:43:00 +0000] Scheduler shutting down normally.\n")
    assert doctor.crash_culprit(tmp_path) is None


# --- against the installed cupsd --------------------------------------------------------------------

import cups  # noqa: E402 - pycups is a dependency of the collector group: missing, these must fail

integration = pytest.mark.integration


@pytest.fixture(scope="module")
def probe() -> doctor.CrashProbe:
    return doctor.probe_whitespace_crash()


def needs_the_crash(probe: doctor.CrashProbe) -> None:
    if not probe.affected:
        pytest.skip(f"the installed cupsd does not crash on whitespace ({probe.package_version}: {probe.detail})")


def run_doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PULLPRINT, "doctor", *args], capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Spooled:
    """A private cupsd holding one saved job from `lp "Quarterly report.txt"` on a stopped queue."""

    root: Path
    cupsd: PrivateCupsd
    queue: str = "SecurePrint"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    def restart(self) -> PrivateCupsd:
        self.cupsd.stop()
        self.cupsd = PrivateCupsd.start(self.root)
        return self.cupsd

    def enable_and_watch(self, seconds: float = 2.0) -> bool:
        """Enable the queue (cupsd then starts the saved job); True when cupsd is still up `seconds` later."""
        connection = cups.Connection(host=self.cupsd.host, port=self.cupsd.port)
        try:
            connection.enablePrinter(self.queue)
        except (cups.IPPError, RuntimeError):
            pass  # a cupsd that dies while answering
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.cupsd.alive():
            time.sleep(0.05)
        return self.cupsd.alive() and doctor.cupsd_answers(self.cupsd.server)


@pytest.fixture
def spooled(open_tmp: Path) -> Iterator[Spooled]:
    root = open_tmp / "cups"
    cupsd = PrivateCupsd.start(root)
    state = Spooled(root, cupsd)
    try:
        connection = cups.Connection(host=cupsd.host, port=cupsd.port)
        connection.addPrinter(state.queue, device=f"socket://127.0.0.1:{free_port()}", ppdname="raw")
        connection.acceptJobs(state.queue)
        connection.disablePrinter(state.queue)
        document = open_tmp / "Quarterly report.txt"
        document.write_text("quarterly figures\n")
        subprocess.run(["lp", "-U", "alice", "-d", state.queue, str(document)], env=cupsd.env(), check=True,
                       capture_output=True)
        # cupsd writes c00001 within 30 s or when it stops; a restart makes it do so now.
        state.restart()
        assert (state.spool / "c00001").exists()
        yield state
    finally:
        state.cupsd.stop()


@integration
@pytest.mark.integration
def test_the_probe_finds_the_crash_in_the_installed_cupsd(probe: doctor.CrashProbe) -> None:
    if probe.package_version != doctor.BROKEN_VERSION:
        pytest.skip(f"cups-daemon is {probe.package_version}, not {doctor.BROKEN_VERSION}")
    assert probe.probed
    assert probe.affected, probe.detail
    assert "SIGSEGV" in probe.detail


@integration
@pytest.mark.integration
def test_the_probe_does_not_cry_wolf_on_names_cupsd_handles() -> None:
    result = doctor.probe_document_names(["a_b", "Bericht\u00a0Q3.txt"])
    assert result.probed, result.detail
    assert not result.affected, result.detail


@integration
@pytest.mark.integration
def test_a_hang_is_caught_by_the_timeout_and_the_probe_cupsd_is_killed(probe, monkeypatch) -> None:
    needs_the_crash(probe)
    made: list[Path] = []
    mkdtemp = doctor.tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs) -> str:
        made.append(Path(mkdtemp(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(doctor.tempfile, "mkdtemp", recording_mkdtemp)
    started = time.monotonic()
    result = doctor.probe_document_names(["a\x7fb"], timeout=15)
    assert result.affected and "stopped answering" in result.detail, result.detail
    assert time.monotonic() - started < 15
    [folder] = made
    assert not folder.exists()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert str(folder).encode() not in cmdline, f"probe cupsd {proc.name} still running"


@integration
@pytest.mark.integration
def test_doctor_reports_the_crash_and_the_u9_pin(probe, open_tmp) -> None:
    needs_the_crash(probe)
    result = run_doctor("--request-root", str(open_tmp), "--cups-server", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "AFFECTED" in result.stdout
    assert "cups-daemon=2.4.2-3+deb12u9" in result.stdout and "libcups2=2.4.2-3+deb12u9" in result.stdout
    assert "remote code execution" in result.stdout
    report = json.loads(run_doctor("--json", "--request-root", str(open_tmp)).stdout)
    assert report["affected"] is True and report["exit_code"] == 1
    assert report["poison_jobs"] == []
    pinned = report["pin_command"].split()[2:]
    assert {f"{package}={doctor.LAST_GOOD_VERSION}" for package in report["cups_packages"]} == set(pinned)


@integration
@pytest.mark.integration
def test_a_poison_job_is_reported_and_cancelled_through_a_running_cupsd(probe, spooled: Spooled) -> None:
    needs_the_crash(probe)
    [job] = doctor.find_poison_jobs(spooled.spool)
    assert (job.job_id, job.owner, job.title, job.document_name, job.queue) == (
        1, "alice", "Quarterly report.txt", "Quarterly report.txt", "SecurePrint")
    assert {p.name for p in job.files} == {"c00001", "d00001-001"}

    report = run_doctor("--request-root", str(spooled.spool), "--cups-server", spooled.cupsd.server)
    assert report.returncode == 1
    assert 'job 1 of alice ("Quarterly report.txt") on SecurePrint' in report.stdout
    assert "--cancel-poison" in report.stdout

    cancelled = run_doctor("--request-root", str(spooled.spool), "--cups-server", spooled.cupsd.server,
                           "--cancel-poison")
    assert ('cancelled job 1 of alice ("Quarterly report.txt"): its document name contains a space, '
            'which crashes cupsd 2.4.2-3+deb12u10') in cancelled.stdout, cancelled.stdout
    assert not (spooled.spool / "c00001").exists() and not (spooled.spool / "d00001-001").exists()
    assert spooled.enable_and_watch(), spooled.cupsd.log_tail()


@integration
@pytest.mark.integration
def test_a_poison_job_is_removed_while_cupsd_is_down_and_cupsd_then_stays_up(probe, spooled: Spooled) -> None:
    needs_the_crash(probe)
    assert not spooled.enable_and_watch(), "enabling the queue should have crashed this cupsd"
    culprit = doctor.crash_culprit(spooled.root / "log", request_root=spooled.spool)
    assert culprit is not None and culprit.startswith(
        'cupsd died while starting job 1 of alice on queue SecurePrint, document name "Quarterly report.txt"')
    # A poison job: the next start (and enable) crashes cupsd again.
    try:
        spooled.restart()
        survived = spooled.enable_and_watch()
    except PullprintError:
        survived = False  # it died as it started
    assert not survived, "the saved job should crash cupsd again after a restart"
    dead_server = spooled.cupsd.server
    spooled.cupsd.stop()

    result = run_doctor("--server-root", str(spooled.root / "etc"), "--cups-server", dead_server, "--cancel-poison")
    assert result.returncode == 1
    assert "is not answering" in result.stdout and "starting job 1 of alice" in result.stdout
    assert f'removed job 1 of alice ("Quarterly report.txt") from {spooled.spool}' in result.stdout, result.stdout
    assert not (spooled.spool / "c00001").exists() and not (spooled.spool / "d00001-001").exists()

    spooled.restart()
    assert spooled.cupsd.alive()
    assert spooled.enable_and_watch(), spooled.cupsd.log_tail()


@integration
@pytest.mark.integration
@pytest.mark.parametrize(("log_level", "document"), [("info", None), ("debug2", "Quarterly report.txt")])
def test_a_job_lost_in_a_crash_is_named_from_the_error_log(probe, open_tmp, log_level, document) -> None:
    needs_the_crash(probe)
    root = open_tmp / "cups"
    cupsd = PrivateCupsd.start(root, log_level=log_level)
    try:
        connection = cups.Connection(host=cupsd.host, port=cupsd.port)
        connection.addPrinter("SecurePrint", device=f"socket://127.0.0.1:{free_port()}", ppdname="raw")
        connection.acceptJobs("SecurePrint")
        connection.enablePrinter("SecurePrint")
        path = open_tmp / "Quarterly report.txt"
        path.write_text("figures\n")
        subprocess.run(["lp", "-U", "alice", "-d", "SecurePrint", str(path)], env=cupsd.env(), capture_output=True,
                       check=False)
        deadline = time.monotonic() + 5
        while cupsd.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not cupsd.alive(), "the job should have crashed cupsd"
    finally:
        cupsd.stop()
    assert not (root / "spool" / "c00001").exists(), "a job that crashes cupsd at once is never saved"
    culprit = doctor.crash_culprit(root / "log")
    assert culprit is not None and culprit.startswith("cupsd died while starting job 1 of alice on queue SecurePrint")
    if document:
        assert culprit.endswith(f'document name "{document}"')
    else:
        assert "not logged" in culprit


@integration
@pytest.mark.integration
def test_queue_install_warns_when_cupsd_is_affected_and_installs_anyway(probe, open_tmp, capsys) -> None:
    needs_the_crash(probe)
    from cups_backend.cli import main as queue_main

    root = open_tmp / "cups"
    cupsd = PrivateCupsd.start(root)
    try:
        token = open_tmp / "token"
        token.write_text("doctor-test-token-0123456789\n")
        common = ["--cups-server", cupsd.server, "--backend-dir", str(cupsd.backend_dir),
                  "--server-root", str(cupsd.server_root), "--token-file", str(token)]
        assert queue_main(["install", "--name", "SecurePrint", "--uri", "pullprint://127.0.0.1:9/", *common]) == 0
        warned = capsys.readouterr().err
        assert "warning:" in warned and "Quarterly report.txt" in warned and "`pullprint doctor`" in warned
        assert "SecurePrint" in cups.Connection(host=cupsd.host, port=cupsd.port).getPrinters()
        assert queue_main(["install", "--name", "Quiet", "--uri", "pullprint://127.0.0.1:9/", "--skip-crash-probe",
                           *common]) == 0
        assert "warning:" not in capsys.readouterr().err
    finally:
        cupsd.stop()


@integration
@pytest.mark.integration
def test_doctor_says_healthy_where_cupsd_does_not_crash(probe, open_tmp) -> None:
    if probe.affected:
        pytest.skip(f"the installed cupsd has the bug ({probe.detail})")
    result = run_doctor("--request-root", str(open_tmp))
    assert result.returncode == 0, result.stdout
    assert "not affected" in result.stdout

