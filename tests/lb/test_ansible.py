"""The Ansible deployment: the playbook parses, the lb role renders the same config as lb.haproxy, and the
service roles' settings pass the services' own --check-config."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lb import haproxy

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not (BIN / "ansible-playbook").exists(),
                                reason="ansible-core is not installed in this virtualenv "
                                       "(pip install 'ansible-core>=2.16')")


def _run(*argv: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": os.environ.get("TMPDIR", "/tmp") + "/ansible-local",
            "PATH": f"{BIN}:/usr/sbin:/sbin:{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, cwd=ANSIBLE,
                            env={**base, **(env or {})}, check=False, timeout=300)
    assert (result.returncode == 0) == ok, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_site_playbook_passes_syntax_check() -> None:
    _run("ansible-playbook", "-i", "inventory.example.ini", "site.yml", "--syntax-check")


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
                                   "service", "systemd", "systemd_service", "uri", "assert"), f"{tasks}: {line}"


def test_lb_role_renders_the_config_lb_haproxy_renders(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.fail("haproxy is not installed (apt-get install -y haproxy)")
    out = tmp_path / "haproxy.cfg"
    extra = {"pullprint_config_dir": str(tmp_path), "pullprint_lb_config_path": str(out),
             "pullprint_lb_socket_path": str(tmp_path / "admin.sock"),
             "pullprint_lb_pullprint_bin": str(BIN / "pullprint"), "ansible_python_interpreter": sys.executable}
    _run("ansible-playbook", "-i", "inventory.example.ini", str(ROOT / "tests/lb/ansible_render_lb.yml"),
         "-e", json.dumps(extra))
    cluster = json.loads((tmp_path / "lb-cluster.json").read_text())
    assert cluster["collectors"] == [{"id": f"c{i}", "url": f"http://10.0.10.2{i}:8801"} for i in (1, 2, 3)]
    settings = json.loads((tmp_path / "lb.json").read_text())["lb"]
    expected = haproxy.render(cluster, haproxy.LbSettings(**settings))
    assert out.read_text() == expected + "\n" or out.read_text() == expected
    text = out.read_text()
    assert "bind 0.0.0.0:8080" in text and "user haproxy" in text and "bind 127.0.0.1:8404" in text
    haproxy.check(out, strict=True)


def test_service_templates_render_to_settings_the_services_know(tmp_path: Path) -> None:
    from analyst.config import AnalystConfig
    from collector.config import CollectorConfig

    extra = {"out_dir": str(tmp_path), "ansible_python_interpreter": sys.executable}
    _run("ansible-playbook", "-i", "inventory.example.ini", str(ROOT / "tests/lb/ansible_render_templates.yml"),
         "-e", json.dumps(extra))
    collector = json.loads((tmp_path / "collector.json").read_text())["collector"]
    assert set(collector) <= {f.name for f in dataclasses.fields(CollectorConfig)}
    assert collector["id"] == "c1" and collector["public_url"] == "http://10.0.10.21:8801"
    assert collector["analyst_url"] == "http://10.0.10.10:8700"
    analyst = json.loads((tmp_path / "analyst.json").read_text())["analyst"]
    assert set(analyst) <= {f.name for f in dataclasses.fields(AnalystConfig)}
    unit = (tmp_path / "pullprint-collector.service").read_text()
    assert "ExecStart=/opt/pullprint/venv/bin/pullprint collector" in unit
    assert "PULLPRINT_COLLECTOR_INSTALLATION_KEY_FILE=/etc/pullprint/secrets/installation_key" in unit
    assert "ExecStart=/opt/pullprint/venv/bin/pullprint analyst" in (tmp_path / "pullprint-analyst.service").read_text()
    cupsd_conf = (tmp_path / "cupsd.conf").read_text()
    assert "Allow @LOCAL" in cupsd_conf  # and cupsd -t accepted it
    # A print server keeps no document once the job left it, and job records only for an hour.
    assert "PreserveJobFiles No\n" in cupsd_conf and "PreserveJobHistory 3600\n" in cupsd_conf


def _secrets(folder: Path, db_url: str) -> Path:
    """The secret files pullprint_common writes, for the check to read."""
    folder.mkdir()
    values = {"installation_key": "ab" * 32, "cluster_token": "token", "submit_token": "submit",
              "badge_pepper": "pepper", "analyst_db_url": db_url}
    for name, value in values.items():
        (folder / name).write_text(value + "\n")
    return folder


def _check_settings(out: Path, secrets: Path, ok: bool = True, **extra: object) -> subprocess.CompletedProcess[str]:
    out.mkdir()
    extra = {"out_dir": str(out), "pullprint_secrets_dir": str(secrets), "pullprint_venv": str(BIN.parent),
             "ansible_python_interpreter": sys.executable, **extra}
    return _run("ansible-playbook", "-i", "inventory.example.ini", str(ROOT / "tests/lb/ansible_check_settings.yml"),
                "-e", json.dumps(extra), ok=ok)


def test_roles_validate_their_settings_with_the_services_check() -> None:
    import yaml

    for role, service in (("pullprint_collector", "collector"), ("pullprint_analyst", "analyst")):
        tasks = yaml.safe_load((ANSIBLE / f"roles/{role}/tasks/main.yml").read_text())
        template = next(t["ansible.builtin.template"] for t in tasks
                        if t.get("ansible.builtin.template", {}).get("src") == f"{service}.json.j2")
        assert template["validate"] == f"{{{{ {role}_check_config }}}}"
        command = yaml.safe_load((ANSIBLE / f"roles/{role}/vars/main.yml").read_text())[f"{role}_check_config"]
        assert command.endswith(f"/bin/pullprint {service} --check-config --config %s")


def test_rendered_settings_pass_the_services_check(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path / "secrets", f"sqlite:///{tmp_path / 'analyst.db'}")
    _check_settings(tmp_path / "out", secrets)
    assert json.loads((tmp_path / "out" / "collector.json").read_text())["collector"]["id"] == "c1"
    assert "analyst" in json.loads((tmp_path / "out" / "analyst.json").read_text())
    assert not (tmp_path / "analyst.db").exists()  # checked, not started


def test_broken_settings_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path / "secrets", "sqlite:///analyst.db")
    result = _check_settings(tmp_path / "out", secrets, ok=False,
                             pullprint_collector_extra_settings={"replicaz": 3, "analyst_url": "analyst1:8700"})
    output = result.stdout + result.stderr
    assert "failed to validate" in output
    assert "collector.replicaz: unknown setting (did you mean replicas?)" in output
    assert "collector.analyst_url: expected a URL with scheme http or https, got 'analyst1:8700'" in output
    assert not (tmp_path / "out" / "collector.json").exists()  # the old settings would have stayed
    (secrets / "installation_key").unlink()
    result = _check_settings(tmp_path / "out2", secrets, ok=False)
    assert f"PULLPRINT_COLLECTOR_INSTALLATION_KEY_FILE: cannot read {secrets / 'installation_key'}" in (
        result.stdout + result.stderr)
