"""The CUPS backend's outside input: argv and environment from cupsd, the device URI, the credentials file.

`requesting-user-name` (argv[2]), the title and the options are whatever the workstation's user sent to
cupsd; the backend must turn any of them into a request the collector can read, or stop with an `ERROR:`
line and an exit code that tells cupsd what to do: it never ends in a traceback (exit 1, which Debian's
default error policy retries forever).
"""

from __future__ import annotations

import http.client
import http.server
import io
import json
import math
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cups_backend import backend, config
from cups_backend.exitcodes import BackendExit
from pullprint.errors import BadRequest
from pullprint.wire import _OPTION_NAME, MAX_COPIES, MAX_TITLE, JobSubmission
from tests.fuzz.profile import fuzz
from tests.fuzz.test_submit_headers import CONTROL

SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
TOKEN = "s3cret-submit-token"

host = st.one_of(st.from_regex(r"\A[a-z0-9][a-z0-9.\-]{0,20}\Z"), st.sampled_from(["[::1]", "127.0.0.1", "[fe80::1]"]))
uri_like = st.one_of(
    st.text(max_size=60),
    st.builds(lambda scheme, h, port, path: f"{scheme}://{h}{port}{path}",
              st.sampled_from(["pullprint", "pullprints", "PULLPRINT", "ipp", "", "pullprint:"]),
              st.one_of(host, st.text(max_size=10), st.sampled_from(["[abc", "u:p@h", "[::1", "h]"])),
              st.one_of(st.just(""), st.integers(-10, 70000).map(lambda p: f":{p}"),
                        st.text(max_size=6).map(":".__add__)),
              st.sampled_from(["", "/", "/base/", "//x", "/?q#f"])))


@given(uri_like)
@example("pullprint://[abc/")  # urlsplit raised ValueError (Invalid IPv6 URL) out of main: a traceback, exit 1
@example("pullprint://h:0/")  # port 0 became port 80
@fuzz()
def test_a_device_uri_is_a_target_or_a_configuration_problem(uri):
    status = backend.Status(io.StringIO())
    try:
        target = backend.parse_device_uri(uri, status)
    except backend.ConfigurationProblem as exc:
        assert str(exc)
        return
    assert target.scheme in ("http", "https") and target.host and 1 <= target.port <= 65535
    assert not target.base_path.endswith("/")
    # The target survives being written as a device URI again.
    h = f"[{target.host}]" if ":" in target.host else target.host
    again = f"pullprint{'s' if target.scheme == 'https' else ''}://{h}:{target.port}{target.base_path}/"
    assert backend.parse_device_uri(again, status) == target


# What cupsd passes: argv[2] is the IPP requesting-user-name, unauthenticated and any UTF-8.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
options_text = st.one_of(
    text, st.lists(st.tuples(st.from_regex(r"\A[a-zA-Z\-]{1,12}\Z"), text), max_size=5).map(
        lambda pairs: " ".join(f"{k}={v}" for k, v in pairs)),
    st.just("job-uuid=urn:uuid:8c7a0e0e-0000-4000-8000-000000000001"))
argv = st.builds(lambda job, user, title, copies, options, file: ["pullprint", job, user, title, copies, options,
                                                                  *file],
                 st.one_of(st.integers(1, 10**6).map(str), text), st.one_of(st.from_regex(r"\A[a-z]{1,8}\Z"), text),
                 text, st.one_of(st.integers(-2, 1200).map(str), text), options_text,
                 st.sampled_from([[], ["/nonexistent/spool/file"]]))
environ = st.fixed_dictionaries({}, optional={"PRINTER": text,
                                              "CONTENT_TYPE": st.one_of(st.just("application/pdf"), text),
                                              "FINAL_CONTENT_TYPE": st.one_of(st.just("printer/foo"), text)})


def sendable(headers: dict[str, str]) -> bool:
    """Whether http.client puts these headers on the wire (it raises otherwise, as the backend's request would)."""
    conn = http.client.HTTPConnection("127.0.0.1", 9)  # putrequest and putheader only buffer: nothing connects
    conn.putrequest("POST", "/api/v1/jobs")
    try:
        for name, value in headers.items():
            conn.putheader(name, value)
    except (ValueError, UnicodeError):
        return False
    return True


@given(argv, environ)
@example(["pullprint", "7", "\u03a9mega", "t", "1", ""], {})  # a non-latin-1 owner: putheader raised UnicodeEncodeError
@example(["pullprint", "7", "alice", "t", "1", "job-originating-host-name=a\\\nb"], {})  # a newline in a header
@example(["pullprint", "7\r\n", "alice", "t", "1", "job-uuid=a\\\nb"], {})
@example(["pullprint", "7", "0\r", "t", "1", ""], {})  # long form: trimmed there, unsendable here
@example(["pullprint", "7", "alice", "t", "1", ""], {"CONTENT_TYPE": "a\nb"})
@fuzz()
def test_argv_becomes_a_submission_the_collector_reads_or_refuses(args, env):
    try:
        job = backend.build_submission(args, env)
    except backend.ConfigurationProblem:
        return
    headers = job.to_headers()
    if not sendable(headers):  # main() refuses these with an ERROR line before sending (the CANCEL below)
        with pytest.raises(BadRequest):
            JobSubmission.from_headers(headers)
        return
    assert 1 <= job.copies <= MAX_COPIES and all(_OPTION_NAME.match(k) for k in job.options)
    try:
        read = JobSubmission.from_headers(headers)
    except BadRequest:
        return  # the collector answers 400 with a JSON error: the backend cancels with an ERROR line
    # The collector reads what was sent, normalised its documented way (trimmed, cut, parameters dropped).
    assert read == replace(job, owner=job.owner.strip(), title=CONTROL.sub(" ", job.title)[:MAX_TITLE] or "untitled",
                           options={k: CONTROL.sub(" ", v) for k, v in job.options.items()},
                           content_type=job.content_type.split(";")[0].strip() or "application/octet-stream",
                           origin_host=job.origin_host[:255], cups_job_id=job.cups_job_id[:32])


@given(options_text)
@fuzz()
def test_the_options_argument_never_raises(text):
    options = backend.parse_options(text)
    assert all(_OPTION_NAME.match(k) and isinstance(v, str) for k, v in options.items())


conf_text = st.one_of(
    st.text(max_size=120),
    st.lists(st.tuples(st.sampled_from(["token", "ca_file", "retry_delays", "retry_budget", "connect_timeout",
                                         "io_timeout", "Retry-Budget", "#x", ""]),
                       st.one_of(text, st.sampled_from(["-1", "0", "nan", "inf", "-inf", "1e400", "1,3,6", "1,-3",
                                                        "1,,2", "abc", "  5  "]))), max_size=6).map(
        lambda kv: "\n".join(f"{k} = {v}" for k, v in kv)),
    st.dictionaries(st.sampled_from(["token", "retry_delays", "io_timeout", "connect_timeout", "retry_budget"]),
                    st.one_of(text, st.floats(), st.lists(st.floats(), max_size=3), st.none(), st.booleans()),
                    max_size=5).map(json.dumps),
    st.integers(1, 3).map(lambda n: "{" * 10 + '"token": ' + "[" * (50_000 * n)),
)


@given(conf_text)
@example('{"token": ' + "[" * 100_000 + "]" * 100_000 + "}")  # json.loads raised RecursionError, not a ConfigError
@example("token = t\nconnect_timeout = -1\n")  # accepted: connect() then raised ValueError out of main
@example("token = t\nio_timeout = nan\n")
@example("token = t\nretry_delays = 1,-3\n")  # time.sleep(-3) raises ValueError
@example(TOKEN + "\n")  # a bare token: the ERROR line (seen by `lpstat -p`) quoted its first 20 characters
@fuzz()
def test_the_credentials_file_is_a_config_or_a_config_error(text):
    with tempfile.TemporaryDirectory(dir=SCRATCH) as root:
        (Path(root) / "pullprint").mkdir()
        (Path(root) / "pullprint" / "backend.conf").write_text(text)
        try:
            cfg = config.load({"CUPS_SERVERROOT": root})
        except config.ConfigError as exc:
            assert str(exc) and TOKEN[:6] not in str(exc)
            return
    assert cfg.token and cfg.token == cfg.token.strip()
    for seconds in (cfg.connect_timeout, cfg.io_timeout, cfg.retry_budget):
        assert math.isfinite(seconds) and seconds >= 0
    assert cfg.connect_timeout > 0 and cfg.io_timeout > 0
    assert all(math.isfinite(d) and d >= 0 for d in cfg.retry_delays)


class _Collector(http.server.BaseHTTPRequestHandler):
    """Reads one submit the way a collector does (chunked body) and answers 201."""

    received: list[dict[str, str]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            self.rfile.read(size + 2)
            if size == 0:
                break
        _Collector.received.append(dict(self.headers))
        body = b'{"id": "j1"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def collector_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"pullprint://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@given(argv, environ, st.binary(max_size=100))
@example(["pullprint", "7", "\u03a9mega", "t", "1", ""], {}, b"%PDF")  # ended in a UnicodeEncodeError traceback
@example(["pullprint", "7", "alice", "t", "1", "job-originating-host-name=a\\\nb"], {}, b"%PDF")  # ValueError
@example(["pullprint", "7", "0\r", "t", "1", ""], {}, b"%PDF")  # the long form: Invalid header value b'0\r'
@fuzz(ci_examples=100)
def test_main_never_ends_in_a_traceback(collector_url, args, env, document):
    """The whole backend, argv to exit code, against a collector that accepts whatever it can read."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as root:
        (Path(root) / "pullprint").mkdir()
        (Path(root) / "pullprint" / "backend.conf").write_text(config.render(TOKEN))
        stderr = io.StringIO()
        code = backend.main(args, {**env, "DEVICE_URI": collector_url, "CUPS_SERVERROOT": root, "TMPDIR": root,
                                   config.ENV_RETRY_BUDGET: "0.001"},
                            io.BytesIO(document), stdout=io.StringIO(), stderr=stderr)
    assert code in set(BackendExit)
    lines = stderr.getvalue().splitlines()
    levels = ("INFO", "NOTICE", "ERROR", "WARNING", "DEBUG", "STATE")
    assert all(line.split(":", 1)[0] in levels for line in lines), lines
    assert all(len(line.encode()) < backend.MAX_MESSAGE for line in lines)
    assert TOKEN not in stderr.getvalue()
    if code != BackendExit.OK:
        assert any(line.startswith("ERROR:") for line in lines), lines
