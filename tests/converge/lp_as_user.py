"""Run on a workstation: `lp` as USER, typing USER's password at lp's prompt as a person does.

    python3 lp_as_user.py USER LP_ARG... < password

The workstation's queue needs the user's credentials (auth-info-required username,password), so lp
asks for the password on the terminal (getpass, which discards what was typed before the prompt): it
runs on a pseudo-terminal here, in the user's own session on it, and the password is sent once the
prompt shows. Plain `lp`, as a person types it: the role's /etc/cups/client.conf makes it talk to
the local cupsd over TCP, where cupsd asks for Basic (on its domain socket it would know the user by
PeerCred, without a password to hand on). Prints lp's output; exits with lp's status.
"""

import os
import pty
import pwd
import sys
import time

user, lp_args = sys.argv[1], sys.argv[2:]
password = sys.stdin.readline().rstrip("\n")
pid, fd = pty.fork()
if pid == 0:
    # The user's own session on this terminal (not `su -c`: util-linux su detaches the command from
    # its terminal, so lp could not prompt and would give up with "Unauthorized").
    account = pwd.getpwnam(user)
    os.initgroups(user, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.chdir(account.pw_dir)
    env = {"HOME": account.pw_dir, "USER": user, "LOGNAME": user, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    os.execvpe("lp", ["lp", *lp_args], env)
seen = b""
deadline = time.monotonic() + 30
sent = False
while time.monotonic() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not sent and b"assword" in seen:
        time.sleep(0.2)
        os.write(fd, password.encode() + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
print(seen.decode(errors="replace").replace(password, "***"))
sys.exit(os.waitstatus_to_exitcode(status))
