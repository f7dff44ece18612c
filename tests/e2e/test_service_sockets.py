"""The services listen where they are told and nowhere else: no gunicorn control socket."""

from __future__ import annotations

import os
from pathlib import Path

from localcluster.cluster import LocalCluster


def _unix_paths(pgid: int) -> set[str]:
    """The paths of the Unix sockets the processes of process group `pgid` hold open."""
    inodes: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (OSError, ProcessLookupError):
            continue
    paths = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes:
            paths.add(fields[7])
    return paths


def test_no_service_opens_a_gunicorn_control_socket(cluster: LocalCluster) -> None:
    groups = {"analyst": cluster.daemons["analyst"].pid}
    groups.update({cid: c.daemon.pid for cid, c in cluster.collectors.items() if c.daemon and c.daemon.alive()})
    assert len(groups) >= 3
    for name, pgid in groups.items():
        held = _unix_paths(pgid)
        assert not [p for p in held if "gunicorn" in p], f"{name} holds {sorted(held)}"
    for log in [cluster.state_dir / "analyst.log", *(c.spool_dir.parent / "collector.log"
                                                       for c in cluster.collectors.values())]:
        assert "Control socket listening" not in log.read_text(errors="replace"), log
