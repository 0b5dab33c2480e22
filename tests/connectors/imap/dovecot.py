"""A real dovecot for the IMAP tests: its own configuration, state and maildirs under a
temporary directory, listening on a free loopback port, run in the foreground
(``dovecot -F -c <conf>``) as a child process. One test user, in a passwd file; its mail
belongs to the current user (to ``nobody`` when the tests run as root, since dovecot
never gives mail to uid 0). Mail is delivered and inspected with the standard library's
imaplib (blocking: call it through ``asyncio.to_thread`` while the app runs)."""

from __future__ import annotations

import contextlib
import getpass
import grp
import imaplib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

USER = "support"
PASSWORD = "imap-test-secret"
START_TIMEOUT_S = 10.0


def dovecot_binary() -> str:
    """The dovecot executable; a failure under CI (it must be there), else a skip."""
    found = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )
    if found:
        return found
    message = "dovecot is not installed (Debian: apt-get install dovecot-imapd)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dovecot:
    """Its directory is its own (not under pytest's ``tmp_path``, whose parents only root
    may enter: dovecot's services run as other users); ``remove`` deletes it."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = dovecot_binary()
        self.root = Path(tempfile.mkdtemp(prefix="omniroute-dovecot-"))
        self.root.chmod(0o755)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._configure()

    def _configure(self) -> None:
        root = self.root
        for name in ("run", "state", "mail", "home"):
            (root / name).mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            uid, gid, service_user, service_group = nobody.pw_uid, nobody.pw_gid, None, None
            for name in ("mail", "home"):
                os.chown(root / name, uid, gid)
        else:
            uid, gid, service_user = os.getuid(), os.getgid(), getpass.getuser()
            service_group = grp.getgrgid(gid).gr_name
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{root / 'home'}::\n")
        (root / "dovecot.conf").write_text(self._conf(service_user, service_group))

    def _conf(self, service_user: str | None, service_group: str | None) -> str:
        """As root dovecot runs its services as its own users; as anyone else, every
        service runs as that user (and nothing is chrooted)."""
        root = self.root
        unprivileged = (
            f"default_internal_user = {service_user}\n"
            f"default_internal_group = {service_group}\n"
            f"default_login_user = {service_user}\n"
            "service anvil {\n  chroot =\n}\n"
            "service imap-login {\n  chroot =\n}\n"
            if service_user
            else ""
        )
        return (
            f"base_dir = {root / 'run'}\n"
            f"state_dir = {root / 'state'}\n"
            f"log_path = {root / 'dovecot.log'}\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "ssl = no\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "auth_failure_delay = 0\n"
            "login_trusted_networks = 127.0.0.0/8\n"  # no penalty after a refused login
            "first_valid_uid = 1\n"
            f"mail_location = maildir:{root / 'mail'}/%u\n"
            f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {root / 'passwd'}\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = {root / 'passwd'}\n}}\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n"
            "}\n" + unprivileged
        )

    def start(self) -> None:
        conf = str(self.root / "dovecot.conf")
        self.process = subprocess.Popen(  # noqa: S603 — fixed argv: the dovecot binary and our config
            [self.binary, "-F", "-c", conf],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: ``stop`` ends the children too
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._greets():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not start:\n{self.log()}")
            time.sleep(0.02)

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                return conn.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """Killed, with every process it started (the master alone would leave logged-in
        imap processes running): every client connection drops at once."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def toml(self, mailbox: str, /, **extra: object) -> str:
        """A ``[connectors.imap]`` table for this server; ``extra`` adds or replaces keys."""
        table: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "tls": False,
            "user": USER,
            "password": PASSWORD,
            "mailbox": mailbox,
            "own_addresses": ["support@acme.example"],
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
            "timeout_s": 5.0,
        } | extra
        lines = [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        return "[connectors.imap]\n" + "\n".join(lines) + "\n"


class Mailbox:
    """One mailbox of the test user, through blocking imaplib (one connection per call)."""

    def __init__(self, server: Dovecot, name: str) -> None:
        self.server = server
        self.name = name

    @contextmanager
    def _imap(self, select: bool = True) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4("127.0.0.1", self.server.port, timeout=10)
        try:
            imap.login(USER, PASSWORD)
            if select:
                _ok(imap.select(self.name))
            yield imap
        finally:
            imap.logout()

    def create(self) -> None:
        with self._imap(select=False) as imap:
            _ok(imap.create(self.name))

    def recreate(self) -> None:
        """Deleted and created again: a new UIDVALIDITY, UIDs from 1."""
        with self._imap(select=False) as imap:
            _ok(imap.delete(self.name))
            _ok(imap.create(self.name))

    def append(self, raw: bytes, *, seen: bool = False, arrived: datetime | None = None) -> int:
        """The new message's UID; ``arrived``: its internal date (default: now)."""
        with self._imap(select=False) as imap:
            typ, data = imap.append(self.name, r"(\Seen)" if seen else None, arrived, raw)
            _ok((typ, data))
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        assert found, data
        return int(found.group(1))

    def flags(self, uid: int) -> set[str]:
        with self._imap() as imap:
            typ, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            _ok((typ, data))
        found = re.search(rb"FLAGS \(([^)]*)\)", data[0] or b"") if data[0] else None
        return set(found.group(1).decode().split()) if found else set()

    def mark_unseen(self, uid: int) -> None:
        with self._imap() as imap:
            _ok(imap.uid("STORE", str(uid), "-FLAGS.SILENT", r"(\Seen)"))

    def uidvalidity(self) -> int:
        with self._imap(select=False) as imap:
            typ, data = imap.status(self.name, "(UIDVALIDITY)")
            _ok((typ, data))
        found = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert found, data
        return int(found.group(1))


def _ok(answer: tuple[str, list[bytes | None] | list[bytes]]) -> None:
    typ, data = answer
    assert typ == "OK", data
