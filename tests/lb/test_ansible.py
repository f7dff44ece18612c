"""The Ansible deployment: the playbook parses, the CA role issues every node its certificate, the lb role
renders the same config as lb.haproxy (TLS both sides, real certificates, haproxy -c), the service roles'
settings pass the services' own --check-config with TLS on, the rendered Redis and PostgreSQL take only
TLS clients with the right credentials, and no secret sits in argv, a URL or a config file."""

from __future__ import annotations

import dataclasses
import grp
import importlib.util
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from lb import haproxy
from pullprint import daemons, pki

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not (BIN / "ansible-playbook").exists(),
                                reason="ansible-core is not installed in this virtualenv "
                                       "(pip install 'ansible-core>=2.16')")

# What a site puts in its vault (vault.example.yml), with values a test can look for.
VAULT = {"pullprint_installation_key": "ab" * 32, "pullprint_session_key": "session-key-0123456789abcdef",
         "pullprint_badge_pepper": "badge-pepper-0123456789abcdef",
         "pullprint_redis_collector_key": "redis-collector-key-0123456789abcdef",
         "pullprint_redis_admin_password": "redis-admin-0123456789abcdef",
         "pullprint_analyst_db_password": "db-password-0123456789abcdef"}


def _run(*argv: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": os.environ.get("TMPDIR", "/tmp") + "/ansible-local",
            "PATH": f"{BIN}:/usr/sbin:/sbin:{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, cwd=ANSIBLE,
                            env={**base, **(env or {})}, check=False, timeout=300)
    assert (result.returncode == 0) == ok, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def _playbook(name: str, extra: dict[str, Any], ok: bool = True,
              args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return _run("ansible-playbook", "-i", "inventory.example.ini", str(ROOT / "tests/lb" / name),
                "-e", json.dumps(extra), *args, ok=ok)


def _tls_vars(tmp: Path, ca: Path | None = None) -> dict[str, Any]:
    """Where the roles put the CA (control node) and each host's TLS files, inside the test's folder
    (starting from a copy of `ca`, a CA folder the role made: issuing is slow, and the role keeps
    what exists); the services' accounts are this test's own (the roles chown keys to them)."""
    if ca is not None:
        shutil.copytree(ca, tmp / "ca")
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return {"pullprint_ca_dir": str(tmp / "ca"), "pullprint_ca_cli": str(BIN / "pullprint"),
            "pullprint_tls_dir": str(tmp / "tls"), "pullprint_state_dir": str(tmp / "state"),
            "pullprint_user": user, "pullprint_group": group, "pullprint_lb_group": group,
            "pullprint_redis_user": user, "pullprint_redis_group": group,
            "pullprint_postgresql_user": user, "pullprint_postgresql_group": group,
            "pullprint_tls_extra_hosts": ["127.0.0.1"], "ansible_python_interpreter": sys.executable}


def _identity(cert_file: Path) -> tuple[pki.Identity | None, list[str]]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = [str(n.value) for n in alt]
    return pki.identity_of(cert), names


def _verify(cert_file: Path, ca_file: Path) -> None:
    """The certificate is signed by the CA (openssl verify, as a TLS peer would check it)."""
    result = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file), str(cert_file)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def issued_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA folder made by the pullprint_ca role for the example inventory (once per session)."""
    folder = tmp_path_factory.mktemp("ca-by-role")
    _playbook("ansible_ca.yml", _tls_vars(folder))
    return folder / "ca"


def test_site_playbook_passes_syntax_check() -> None:
    _run("ansible-playbook", "-i", "inventory.example.ini", "site.yml", "--syntax-check")
    _run("ansible-playbook", "-i", "inventory.example.ini", "retire-collector.yml", "--syntax-check",
         "-e", "retire=c3.example.org")


def test_every_role_default_is_prefixed_and_modules_are_fully_qualified() -> None:
    for defaults in ANSIBLE.glob("roles/*/defaults/main.yml"):
        for line in defaults.read_text().splitlines():
            if line and not line[0].isspace() and not line.startswith(("#", "-", "{")):
                assert line.startswith("pullprint_"), f"{defaults}: {line}"
    for tasks in [*ANSIBLE.glob("roles/*/tasks/*.yml"), *ANSIBLE.glob("roles/*/handlers/*.yml"),
                  ANSIBLE / "site.yml"]:
        for line in tasks.read_text().splitlines():
            stripped = line.strip()
            if stripped.endswith(":") and not stripped.startswith(("-", "#")) and "." not in stripped:
                key = stripped[:-1]
                assert key not in ("command", "copy", "template", "apt", "file", "user", "group", "pip",
                                   "service", "systemd", "systemd_service", "uri", "assert", "stat",
                                   "include_role", "import_tasks"), f"{tasks}: {line}"


def test_nothing_names_the_shared_tokens_that_are_gone() -> None:
    """cluster_token and submit_token no longer exist: no role, template or vault example may set them."""
    for path in ANSIBLE.rglob("*"):
        if path.is_file() and "pki" not in path.parts:
            text = path.read_text()
            assert "cluster_token" not in text and "CLUSTER_TOKEN" not in text, path
            assert "pullprint_submit_token" not in text and "SUBMIT_TOKEN" not in text, path


def test_vault_example_lists_every_secret_the_roles_need() -> None:
    import yaml

    vault = yaml.safe_load((ANSIBLE / "vault.example.yml").read_text())
    assert set(vault) == set(VAULT) and all(value == "" for value in vault.values())
    needed = set()
    for meta in ANSIBLE.glob("roles/*/meta/main.yml"):
        for dep in yaml.safe_load(meta.read_text()).get("dependencies") or []:
            needed |= {f"pullprint_{name}" for name in dep.get("vars", {}).get("pullprint_common_secrets", [])}
            needed -= set(dep.get("vars", {}))  # derived from a vault secret where the role says so
    redis_vars = yaml.safe_load((ANSIBLE / "roles/pullprint_redis/vars/main.yml").read_text())
    needed |= set(redis_vars["pullprint_redis_secrets"])
    assert needed == set(VAULT)


# -- the CA ----------------------------------------------------------------------------------------

def test_ca_role_issues_each_node_its_certificate_once(tmp_path: Path) -> None:
    extra = {**_tls_vars(tmp_path), "pullprint_ca_operators": ["ops"]}
    first = _playbook("ansible_ca.yml", extra)
    ca = tmp_path / "ca"
    assert (ca / "ca.key").stat().st_mode & 0o777 == 0o600
    issued = {(e["role"], e["name"]) for e in pki.Authority(ca).issued()}
    assert issued == {("analyst", "analyst1"), ("collector", "c1"), ("collector", "c2"), ("collector", "c3"),
                      ("lb", "lb1"), ("redis", "analyst1"), ("database", "analyst1"), ("admin", "ops")}
    assert str(_identity(ca / "issued/operators/admin-ops.pem")[0]) == "admin:ops"
    identity, names = _identity(ca / "issued/c2.example.org/collector-c2.pem")
    assert identity is not None and (identity.role, identity.name) == ("collector", "c2")
    assert {"c2.collector.pullprint", "10.0.10.22", "c2.example.org", "127.0.0.1"} <= set(names)
    _, lb_names = _identity(ca / "issued/lb1.example.org/lb-lb1.pem")
    assert "10.0.10.5" in lb_names  # pullprint_lb_address: what CUPS backends and terminals verify
    _verify(ca / "issued/analyst1.example.org/analyst-analyst1.pem", ca / "ca.pem")
    assert (ca / "issued/c2.example.org/collector-c2.key").stat().st_mode & 0o777 == 0o600
    assert "changed=" in first.stdout
    before = {p: p.read_bytes() for p in ca.rglob("*") if p.is_file()}

    # Again: nothing is made anew (idempotent), so the nodes keep their keys.
    again = _playbook("ansible_ca.yml", extra)
    assert re.findall(r"changed=(\d+)", again.stdout) and set(re.findall(r"changed=(\d+)", again.stdout)) == {"0"}
    assert {p: p.read_bytes() for p in ca.rglob("*") if p.is_file()} == before

    # A CRL older than pullprint_ca_crl_resign_days is signed again (it expires after 7 days).
    number = pki.crl_number((ca / "crl.pem").read_bytes())
    _playbook("ansible_ca.yml", {**extra, "pullprint_ca_crl_resign_days": 0})
    assert pki.crl_number((ca / "crl.pem").read_bytes()) == number + 1


# -- the load balancer -----------------------------------------------------------------------------

def test_lb_role_renders_the_config_lb_haproxy_renders(tmp_path: Path, issued_ca: Path) -> None:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.fail("haproxy is not installed (apt-get install -y haproxy)")
    out = tmp_path / "haproxy.cfg"
    extra = {**_tls_vars(tmp_path, issued_ca), "pullprint_config_dir": str(tmp_path),
             "pullprint_lb_config_path": str(out),
             "pullprint_lb_socket_path": str(tmp_path / "admin.sock"),
             "pullprint_lb_pullprint_bin": str(BIN / "pullprint")}
    _playbook("ansible_render_lb.yml", extra)  # its last task installs the file only if haproxy -c accepts it
    cluster = json.loads((tmp_path / "lb-cluster.json").read_text())
    assert cluster["collectors"] == [{"id": f"c{i}", "url": f"https://10.0.10.2{i}:8801"} for i in (1, 2, 3)]
    settings = json.loads((tmp_path / "lb.json").read_text())["lb"]
    expected = haproxy.render(cluster, haproxy.LbSettings(**settings))
    assert out.read_text() == expected + "\n" or out.read_text() == expected
    text = out.read_text()
    bundle, ca_file = tmp_path / "tls/lb-bundle.pem", tmp_path / "tls/ca.pem"
    assert f"bind 0.0.0.0:8080 ssl crt {bundle}" in text and "user haproxy" in text and "bind 127.0.0.1:8404" in text
    for i in (1, 2, 3):
        assert (f"server c{i} 10.0.10.2{i}:8801 check ssl verify required ca-file {ca_file} "
                f"verifyhost c{i}.collector.pullprint check-ssl crl-file {tmp_path / 'tls/crl.pem'} "
                f"crt {bundle}") in text
    # The bundle is the lb's own certificate and its key, in one file, readable by root and haproxy only.
    assert bundle.stat().st_mode & 0o777 == 0o640
    pem = bundle.read_text()
    assert pem.count("BEGIN CERTIFICATE") == 1 and pem.count("BEGIN PRIVATE KEY") == 1
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert pki.identity_of(cert) is not None and str(pki.identity_of(cert)) == "lb:lb1"
    haproxy.check(out, strict=True)


# -- the services' settings ------------------------------------------------------------------------

def test_service_templates_render_to_settings_the_services_know(tmp_path: Path) -> None:
    from analyst.config import AnalystConfig
    from collector.config import CollectorConfig

    extra = {"out_dir": str(tmp_path), "ansible_python_interpreter": sys.executable, **VAULT}
    _playbook("ansible_render_templates.yml", extra)
    collector = json.loads((tmp_path / "collector.json").read_text())["collector"]
    assert set(collector) <= {f.name for f in dataclasses.fields(CollectorConfig)}
    assert collector["id"] == "c1" and collector["public_url"] == "https://10.0.10.21:8801"
    assert collector["analyst_url"] == "https://10.0.10.10:8700"
    assert collector["redis_url"] == "rediss://10.0.10.10:6379/0" and collector["redis_username"] == "collector-c1"
    assert collector["ca_file"] == "/etc/pullprint/tls/ca.pem"
    assert collector["crl_file"] == "/var/lib/pullprint/tls/crl.pem"  # the service may replace it
    assert "insecure_plain_http" not in collector
    analyst = json.loads((tmp_path / "analyst.json").read_text())["analyst"]
    assert set(analyst) <= {f.name for f in dataclasses.fields(AnalystConfig)}
    assert analyst["db_url"] == ("postgresql://pullprint@10.0.10.10:5432/pullprint"
                                 "?sslmode=verify-full&sslrootcert=/etc/pullprint/tls/ca.pem")
    unit = (tmp_path / "pullprint-collector.service").read_text()
    assert "ExecStart=/opt/pullprint/venv/bin/pullprint collector" in unit
    assert "PULLPRINT_COLLECTOR_INSTALLATION_KEY_FILE=/etc/pullprint/secrets/installation_key" in unit
    assert "PULLPRINT_COLLECTOR_SESSION_KEY_FILE=/etc/pullprint/secrets/session_key" in unit
    assert "PULLPRINT_COLLECTOR_REDIS_PASSWORD_FILE=/etc/pullprint/secrets/redis_collector_password" in unit
    analyst_unit = (tmp_path / "pullprint-analyst.service").read_text()
    assert "ExecStart=/opt/pullprint/venv/bin/pullprint analyst" in analyst_unit
    assert "PULLPRINT_ANALYST_DB_PASSWORD_FILE=/etc/pullprint/secrets/analyst_db_password" in analyst_unit
    cupsd_conf = (tmp_path / "cupsd.conf").read_text()
    assert "Allow @LOCAL" in cupsd_conf  # and cupsd -t accepted it
    # A print server keeps no document once the job left it, and job records only for an hour.
    assert "PreserveJobFiles No\n" in cupsd_conf and "PreserveJobHistory 3600\n" in cupsd_conf
    pg_conf = (tmp_path / "pullprint.conf").read_text()
    assert "ssl = on\n" in pg_conf and "password_encryption = 'scram-sha-256'\n" in pg_conf
    hba = [line.split() for line in (tmp_path / "pg_hba.conf").read_text().splitlines()
           if line and not line.startswith("#")]
    assert ["hostssl", "pullprint", "pullprint", "10.0.10.10/32", "scram-sha-256"] in hba
    assert all(line[0] in ("local", "hostssl") or line[-1] == "reject" for line in hba)


def test_no_secret_in_argv_urls_or_rendered_files(tmp_path: Path) -> None:
    """Every secret reaches a service as a file: none in a unit's ExecStart or Environment, a URL, a
    settings file or redis.conf (which holds only the passwords' SHA-256)."""
    import hashlib

    extra = {"out_dir": str(tmp_path), "ansible_python_interpreter": sys.executable, **VAULT}
    _playbook("ansible_render_templates.yml", extra)
    rendered = {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}
    assert {"collector.json", "analyst.json", "pullprint-collector.service", "pullprint-analyst.service",
            "redis.conf", "pullprint.conf", "pg_hba.conf", "cupsd.conf"} <= set(rendered)
    for name, text in rendered.items():
        for secret in VAULT.values():
            assert secret not in text, f"a secret is written into {name}"
        for line in text.splitlines():
            if line.startswith(("ExecStart", "Environment")):
                assert "=" in line and all(s not in line for s in VAULT.values())
        for url in re.findall(r"[a-z]+s?://[^\s\"']+", text):
            assert "@" not in url.split("/", 3)[2] or ":" not in url.split("/", 3)[2].split("@")[0], url
    users = rendered["users.acl"]
    for collector_id in ("c1", "c2", "c3"):  # one user per collector of the inventory, only a hash of its password
        password = collector_password(collector_id)
        assert password not in users
        assert f"user collector-{collector_id} reset on #{hashlib.sha256(password.encode()).hexdigest()} " in users
    assert len({collector_password(c) for c in ("c1", "c2", "c3")}) == 3


def collector_password(collector_id: str) -> str:
    """What the roles derive for `collector_id` from the vault's key (ansible/filter_plugins)."""
    spec = importlib.util.spec_from_file_location("pullprint_filters", ANSIBLE / "filter_plugins/pullprint_filters.py")
    assert spec is not None and spec.loader is not None
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    return str(filters.redis_collector_password(VAULT["pullprint_redis_collector_key"], collector_id))


def _secrets(folder: Path) -> Path:
    """The secret files pullprint_common writes, for the check to read."""
    folder.mkdir()
    for name, value in VAULT.items():
        (folder / name.removeprefix("pullprint_")).write_text(value + "\n")
    (folder / "redis_collector_password").write_text(collector_password("c1") + "\n")  # derived for c1
    return folder


def _check_settings(tmp: Path, ca: Path, out: Path, secrets: Path, ok: bool = True, args: tuple[str, ...] = (),
                    **extra: object) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    if not (tmp / "ca").exists():
        shutil.copytree(ca, tmp / "ca")
    settings = {**_tls_vars(tmp), "out_dir": str(out), "pullprint_secrets_dir": str(secrets),
                "pullprint_venv": str(BIN.parent), **extra}
    return _playbook("ansible_check_settings.yml", settings, ok=ok, args=args)


def test_roles_validate_their_settings_with_the_services_check() -> None:
    import yaml

    for role, service in (("pullprint_collector", "collector"), ("pullprint_analyst", "analyst")):
        tasks = yaml.safe_load((ANSIBLE / f"roles/{role}/tasks/main.yml").read_text())
        template = next(t["ansible.builtin.template"] for t in tasks
                        if t.get("ansible.builtin.template", {}).get("src") == f"{service}.json.j2")
        assert template["validate"] == f"{{{{ {role}_check_config }}}}"
        command = yaml.safe_load((ANSIBLE / f"roles/{role}/vars/main.yml").read_text())[f"{role}_check_config"]
        assert command.endswith(f"/bin/pullprint {service} --check-config --config %s")
        # The TLS tasks the test runs are the ones the role runs.
        assert {"ansible.builtin.import_tasks": "tls.yml", "name": f"Install the {service}'s TLS files"} in tasks


def test_rendered_settings_pass_the_services_check_with_tls_on(tmp_path: Path, issued_ca: Path) -> None:
    secrets = _secrets(tmp_path / "secrets")
    _check_settings(tmp_path, issued_ca, tmp_path / "out", secrets)
    collector = json.loads((tmp_path / "out" / "collector.json").read_text())["collector"]
    assert collector["id"] == "c1" and "insecure_plain_http" not in collector
    tls = tmp_path / "tls"
    assert collector["cert_file"] == str(tls / "collector.pem") and collector["key_file"] == str(tls / "collector.key")
    assert collector["crl_file"] == str(tmp_path / "state/tls/crl.pem")
    # The role installed this node's own certificate (c1, its address) and the CA that signed it.
    identity, names = _identity(Path(collector["cert_file"]))
    assert str(identity) == "collector:c1" and "10.0.10.21" in names
    _verify(Path(collector["cert_file"]), Path(collector["ca_file"]))
    assert Path(collector["key_file"]).stat().st_mode & 0o777 == 0o600
    assert Path(collector["crl_file"]).read_bytes() == (tmp_path / "ca/crl.pem").read_bytes()
    assert Path(collector["crl_file"]).stat().st_uid == os.getuid()  # the service user's: it replaces it
    analyst = json.loads((tmp_path / "out" / "analyst.json").read_text())["analyst"]
    identity, names = _identity(Path(analyst["cert_file"]))
    assert str(identity) == "analyst:analyst1" and {"10.0.10.10", "analyst.pullprint"} <= set(names)
    assert Path(analyst["crl_file"]).exists() and "sslmode=verify-full" in analyst["db_url"]
    assert not (tmp_path / "analyst.db").exists()  # checked, not started
    # Run again: every file is as the roles want it, nothing changes (no restart on the next deploy).
    again = _check_settings(tmp_path, issued_ca, tmp_path / "out", secrets)
    assert set(re.findall(r"changed=(\d+)", again.stdout)) == {"0"}, again.stdout[-3000:]


def test_a_revocation_reaches_the_analyst_and_collectors_with_tags_crl(tmp_path: Path, issued_ca: Path) -> None:
    """README's procedure: `pullprint ca revoke` on the control node, then `--tags crl` puts the new CRL
    where the analyst (which serves it) and each collector read it, and nothing else runs."""
    secrets = _secrets(tmp_path / "secrets")
    _check_settings(tmp_path, issued_ca, tmp_path / "out", secrets)
    (serial,) = pki.Authority(tmp_path / "ca").revoke(role="collector", name="c2")
    result = _check_settings(tmp_path, issued_ca, tmp_path / "out2", secrets, args=("--tags", "crl"))
    assert "Render and check" not in result.stdout  # only the CRL tasks ran
    for copy in (tmp_path / "tls/crl.pem", tmp_path / "state/tls/crl.pem"):
        crl = x509.load_pem_x509_crl(copy.read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None, copy


def test_broken_settings_are_refused_with_what_is_wrong(tmp_path: Path, issued_ca: Path) -> None:
    secrets = _secrets(tmp_path / "secrets")
    result = _check_settings(tmp_path, issued_ca, tmp_path / "out", secrets, ok=False,
                             pullprint_collector_extra_settings={"replicaz": 3, "analyst_url": "analyst1:8700"})
    output = result.stdout + result.stderr
    assert "failed to validate" in output
    assert "collector.replicaz: unknown setting (did you mean replicas?)" in output
    assert "collector.analyst_url: expected a URL with scheme http or https, got 'analyst1:8700'" in output
    assert not (tmp_path / "out" / "collector.json").exists()  # the old settings would have stayed
    (secrets / "installation_key").unlink()
    result = _check_settings(tmp_path, issued_ca, tmp_path / "out2", secrets, ok=False)
    assert f"PULLPRINT_COLLECTOR_INSTALLATION_KEY_FILE: cannot read {secrets / 'installation_key'}" in (
        result.stdout + result.stderr)


def test_roles_refuse_plain_http_and_passwords_in_urls(tmp_path: Path, issued_ca: Path) -> None:
    secrets = _secrets(tmp_path / "secrets")
    result = _check_settings(tmp_path, issued_ca, tmp_path / "out", secrets, ok=False,
                             pullprint_collector_extra_settings={"insecure_plain_http": True})
    assert "the collector speaks mutual TLS only" in result.stdout + result.stderr
    result = _check_settings(tmp_path, issued_ca, tmp_path / "out2", secrets, ok=False,
                             pullprint_collector_redis_url="redis://10.0.10.10:6379/0")
    assert "the collector speaks mutual TLS only" in result.stdout + result.stderr
    result = _check_settings(tmp_path, issued_ca, tmp_path / "out3", secrets, ok=False,
                             pullprint_analyst_db_url="postgresql://pullprint:hunter2@10.0.10.10/pullprint"
                                                      "?sslmode=verify-full")
    assert "analyst.db_url: must not carry the password" in result.stdout + result.stderr


# -- Redis -----------------------------------------------------------------------------------------

def test_redis_role_rules_are_the_tested_ones() -> None:
    import yaml

    from localcluster.redis_server import RULES

    rules = yaml.safe_load((ANSIBLE / "roles/pullprint_redis/vars/main.yml").read_text())["pullprint_redis_acl_rules"]
    assert rules == RULES


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder (UNIX socket paths are limited to 107 bytes; pytest's tmp_path can be longer)."""
    folder = Path(tempfile.mkdtemp(prefix="pp-ans-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_rendered_redis_takes_only_tls_clients_with_a_certificate_and_acl_user(tmp_path: Path,
                                                                             issued_ca: Path) -> None:
    import redis

    from collector.redis_client import connect
    from pullprint.tls import TlsFiles

    port = daemons.free_port()
    state = tmp_path / "redis"
    state.mkdir()
    extra = {**_tls_vars(tmp_path, issued_ca), **VAULT, "pullprint_redis_config_path": str(tmp_path / "redis.conf"),
             "pullprint_redis_state_dir": str(state), "pullprint_redis_log_file": "", "pullprint_redis_pid_file": "",
             "pullprint_redis_bind": ["127.0.0.1"], "pullprint_redis_tls_port": port,
             "pullprint_redis_acl_path": str(tmp_path / "users.acl")}
    _playbook("ansible_render_redis.yml", extra)
    config = (tmp_path / "redis.conf").read_text()
    assert "port 0\n" in config and "tls-auth-clients yes\n" in config
    assert f"aclfile {tmp_path / 'users.acl'}\n" in config
    assert all(secret not in config + (tmp_path / "users.acl").read_text() for secret in VAULT.values())
    server = daemons.start("redis-ansible", [shutil.which("redis-server") or "/usr/bin/redis-server",
                                             str(tmp_path / "redis.conf")],
                           log_path=tmp_path / "redis.log", ready=lambda: daemons.port_open("127.0.0.1", port))
    try:
        ca = pki.Authority(tmp_path / "ca")
        cert, key = ca.issue("collector", "c1", ["127.0.0.1"], out_dir=tmp_path / "client")
        tls = TlsFiles(str(ca.cert_file), str(cert), str(key), str(ca.crl_file))
        url = f"rediss://127.0.0.1:{port}/0"
        # A collector's certificate, its own ACL user and password: served, within pp:* only.
        client = connect(url, username="collector-c1", password=collector_password("c1"), tls=tls,
                         socket_timeout=5)
        assert client.ping() is True
        client.set("pp:test", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other:key", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()
        admin = connect(url, username="admin", password=VAULT["pullprint_redis_admin_password"], tls=tls,
                        socket_timeout=5)
        assert admin.get("pp:test") == b"1"
        # Certificate but no user: the default user is off.
        with pytest.raises(redis.exceptions.AuthenticationError):
            connect(url, tls=tls, socket_timeout=5).ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            connect(url, username="collector-c1", password="wrong-password", tls=tls, socket_timeout=5).ping()
        with pytest.raises(redis.exceptions.AuthenticationError):  # another collector's password is no use
            connect(url, username="collector-c1", password=collector_password("c2"), tls=tls, socket_timeout=5).ping()
        # c2 retired: gone from the inventory, the next run's users.acl lacks it, and the reload
        # (the role's handler sends ACL LOAD) refuses and disconnects it while c1 and c3 carry on.
        c2 = connect(url, username="collector-c2", password=collector_password("c2"), tls=tls, socket_timeout=5)
        assert c2.ping() is True
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("".join(line for line in (ANSIBLE / "inventory.example.ini").read_text()
                                     .splitlines(keepends=True) if not line.startswith("c2.")))
        _run("ansible-playbook", "-i", str(inventory), str(ROOT / "tests/lb/ansible_render_redis.yml"),
             "-e", json.dumps(extra))
        assert "collector-c2" not in (tmp_path / "users.acl").read_text()
        assert admin.execute_command("ACL", "LOAD") in (b"OK", "OK", True)
        with pytest.raises(redis.exceptions.ConnectionError):
            c2.get("pp:test")
        with pytest.raises(redis.exceptions.AuthenticationError):
            connect(url, username="collector-c2", password=collector_password("c2"), tls=tls, socket_timeout=5).ping()
        assert client.get("pp:test") == b"1"
        assert connect(url, username="collector-c3", password=collector_password("c3"), tls=tls,
                       socket_timeout=5).ping() is True
        # TLS without a client certificate: no handshake.
        context = ssl.create_default_context(cafile=str(ca.cert_file))
        with (pytest.raises((ssl.SSLError, ConnectionError, OSError)),
              socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
              context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped):
            wrapped.sendall(b"PING\r\n")
            if not wrapped.recv(64):
                raise ConnectionError("closed")
        # Plain TCP: nothing answers a command.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"PING\r\n")
            try:
                answer = raw.recv(64)
            except (ConnectionResetError, TimeoutError):
                answer = b""
            assert b"PONG" not in answer and b"+" not in answer[:1]
    finally:
        server.stop()


# -- PostgreSQL ------------------------------------------------------------------------------------

def test_rendered_postgresql_takes_the_analyst_over_tls_with_scram_only(short_tmp: Path, issued_ca: Path) -> None:
    import psycopg

    paths = daemons.require("initdb", "pg_ctl")
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(short_tmp, "postgres", "postgres")

    def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*as_postgres, *argv], input=stdin, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    data, out = short_tmp / "data", short_tmp / "out"
    run(paths["initdb"], "-D", str(data), "-U", "postgres", "-A", "peer", "--no-sync", "-E", "UTF8",
        "--locale", "C")
    run("mkdir", str(out))
    port = daemons.free_port()
    account = ({"pullprint_postgresql_user": "postgres", "pullprint_postgresql_group": "postgres"}
               if as_postgres else {})
    extra = {**_tls_vars(short_tmp, issued_ca), **account, **VAULT, "out_dir": str(out),
             "pullprint_postgresql_config_dir": str(data), "pullprint_db_port": port,
             "pullprint_postgresql_listen_addresses": "127.0.0.1",
             "pullprint_postgresql_allowed_networks": ["127.0.0.1/32"]}
    _playbook("ansible_render_postgresql.yml", extra)
    with (data / "postgresql.conf").open("a") as conf:  # Debian's postgresql.conf has this line
        conf.write("include_dir = 'conf.d'\n")
    socket_dir = short_tmp / "run"
    run("mkdir", str(socket_dir))
    run(paths["pg_ctl"], "-D", str(data), "-o", f"-k {socket_dir} -c fsync=off", "-l", str(short_tmp / "pg.log"),
        "-w", "-t", "60", "start")
    try:
        sql = (out / "setup.sql").read_text()
        psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
        for _ in range(2):  # the role runs it on every play: a second run changes nothing and fails nothing
            run(psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir), "-p", str(port),
                "-d", "postgres", stdin=sql)
        ca_file = short_tmp / "tls/ca.pem"
        good: dict[str, Any] = {"host": "127.0.0.1", "port": port, "user": "pullprint", "dbname": "pullprint",
                "password": VAULT["pullprint_analyst_db_password"], "sslmode": "verify-full",
                "sslrootcert": str(ca_file), "connect_timeout": 5}
        with psycopg.connect(**good) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
            assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        stored = run(psql, "--no-psqlrc", "-At", "-h", str(socket_dir), "-p", str(port), "-d", "postgres",
                     "-c", "SELECT rolpassword FROM pg_authid WHERE rolname = 'pullprint'").stdout
        assert stored.startswith("SCRAM-SHA-256$") and VAULT["pullprint_analyst_db_password"] not in stored
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(**{**good, "password": "wrong-password-0123456789"})
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects"):
            psycopg.connect(**{**good, "sslmode": "disable"})
        # The analyst's own engine, as analyst.json tells it (URL without password, the password apart).
        from sqlalchemy import text

        from analyst.db import make_engine

        engine = make_engine(f"postgresql://pullprint@127.0.0.1:{port}/pullprint?sslmode=verify-full"
                             f"&sslrootcert={ca_file}", VAULT["pullprint_analyst_db_password"])
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == "pullprint"
        engine.dispose()
    finally:
        subprocess.run([*as_postgres, paths["pg_ctl"], "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)


# -- print servers ---------------------------------------------------------------------------------

def test_print_server_gets_its_own_credential_from_the_analyst(tmp_path: Path) -> None:
    from analyst.config import AnalystConfig
    from analyst.db import Database
    from analyst.submitters.models import Submitter
    from pullprint import config as pullprint_config
    from pullprint.credentials import token_digest

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "analyst_db_password").write_text("unused-by-sqlite\n")
    (tmp_path / "analyst.json").write_text(json.dumps({"analyst": {"db_url": f"sqlite:///{tmp_path / 'a.db'}"}}))
    extra = {"pullprint_config_dir": str(tmp_path), "pullprint_secrets_dir": str(secrets),
             "pullprint_venv": str(BIN.parent), "ansible_connection": "local",
             "ansible_python_interpreter": sys.executable}

    def stored_digest() -> str:
        cfg = pullprint_config.load(AnalystConfig, "analyst", path=tmp_path / "analyst.json", environ={})
        database = Database(cfg.db_url)
        try:
            with database.session() as session:
                submitter = session.get(Submitter, "print1.example.org")
                assert submitter is not None and submitter.revoked_at is None
                return str(submitter.token_hash)
        finally:
            database.dispose()

    _playbook("ansible_print_server_credential.yml", extra)
    token_file = secrets / "submit_token"
    token = token_file.read_text().strip()
    assert len(token) >= 32 and token_file.stat().st_mode & 0o777 == 0o600
    assert stored_digest() == token_digest(token)  # the analyst knows it (by digest): collectors will accept it
    # Again: the host keeps its credential (no new one each run).
    _playbook("ansible_print_server_credential.yml", extra)
    assert token_file.read_text().strip() == token
    # A rotation: a new token, and the analyst's digest follows (the old one stops working).
    _playbook("ansible_print_server_credential.yml", {**extra, "pullprint_print_server_rotate_credential": True})
    rotated = token_file.read_text().strip()
    assert rotated != token and stored_digest() == token_digest(rotated)
