"""A throwaway OpenLDAP server (Debian's `slapd`) for the directory tests: its own slapd.conf, mdb database
and free port under a temporary directory, loaded with `slapadd`, changed with ldap-utils' `ldapmodify` as
the directory's administrator would, stopped and started again by the tests. Never the system's instance.

Active Directory's `userAccountControl` is emulated: a small schema gives OpenLDAP the attribute (AD's own
OID and syntax) through an auxiliary class, so the real flag logic (0x2, ACCOUNTDISABLE) runs against a real
server. `tests/directories/users.ldif` holds the people and groups.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "directory-root-secret"
SERVICE_DN = f"cn=tokenward,ou=services,{BASE}"
SERVICE_PASSWORD = "service-account-secret"
LOGIN_GROUP = f"cn=tokenward-users,{GROUPS}"
ADMIN_GROUP = f"cn=tokenward-admins,{GROUPS}"
USERS_LDIF = Path(__file__).with_name("users.ldif")
START_DEADLINE_SECONDS = 15.0

AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'tokenwardTestAdAccount' AUXILIARY MAY userAccountControl )
"""


def password_of(username: str) -> str:
    return f"{username}-directory-password"


def user_dn(username: str) -> str:
    return f"uid={username},{PEOPLE}"


def _tool(name: str) -> str:
    """A missing tool fails the test: these tests must run wherever the suite runs."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install slapd ldap-utils (scripts/test does it)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, *, alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"slapd exited with {alive.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {START_DEADLINE_SECONDS} s")


class Slapd:
    def __init__(
        self, workdir: Path, *, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None
    ) -> None:
        """`host`: the address slapd listens on; `tls`: (certificate, key) for ldaps:// and StartTLS."""
        self.workdir, self.host, self.tls = workdir, host, tls
        self.port = free_port(host)
        self.tls_port = free_port(host) if tls else None
        self.process: subprocess.Popen[bytes] | None = None
        self.config = workdir / "slapd.conf"
        self.log = workdir / "slapd.log"
        (workdir / "data").mkdir(parents=True)
        (workdir / "ad.schema").write_text(AD_SCHEMA)
        self.config.write_text(self._config())
        loaded = subprocess.run(
            [_tool("slapadd"), "-f", str(self.config), "-l", str(USERS_LDIF)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert loaded.returncode == 0, loaded.stderr

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://localhost:{self.tls_port}"

    def _config(self) -> str:
        schemas = "\n".join(
            f"include /etc/ldap/schema/{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")
        )
        tls = ""
        if self.tls:
            tls = f"TLSCertificateFile {self.tls[0]}\nTLSCertificateKeyFile {self.tls[1]}\n"
        return f"""{schemas}
include {self.workdir / "ad.schema"}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {self.workdir / "slapd.pid"}
{tls}
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {self.workdir / "data"}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""

    def start(self) -> None:
        urls = self.url + (f" ldaps://{self.host}:{self.tls_port}" if self.tls else "")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [_tool("slapd"), "-f", str(self.config), "-h", urls, "-d", "stats"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_port(self.host, self.port, alive=self.process)
            if self.tls_port:
                wait_for_port(self.host, self.tls_port, alive=self.process)
        except RuntimeError as err:
            self.stop()
            raise RuntimeError(f"{err}; log: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def operations(self) -> list[str]:
        """What slapd logged so far (`-d stats`), as `BIND dn=…`, `SRCH base=…`, `RESULT … err=N` lines."""
        return [line.split(" ", 4)[-1] for line in self.log.read_text().splitlines() if " op=" in line]

    def modify(self, ldif: str) -> None:
        """`ldapmodify` as the directory's administrator (changetype records)."""
        result = subprocess.run(
            [_tool("ldapmodify"), "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=ldif,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr

    def rename(self, old: str, new: str) -> None:
        """A new uid (and DN); group entries still name the old DN until `set_group` (no refint overlay)."""
        self.modify(f"dn: {user_dn(old)}\nchangetype: modrdn\nnewrdn: uid={new}\ndeleteoldrdn: 1\n")

    def set_account_control(self, username: str, value: int) -> None:
        self.modify(
            f"dn: {user_dn(username)}\nchangetype: modify\nreplace: userAccountControl\n"
            f"userAccountControl: {value}\n"
        )

    def delete(self, username: str) -> None:
        self.modify(f"dn: {user_dn(username)}\nchangetype: delete\n")

    def set_group(self, group_dn: str, members: list[str]) -> None:
        lines = "".join(f"member: {user_dn(name)}\n" for name in members)
        self.modify(f"dn: {group_dn}\nchangetype: modify\nreplace: member\n{lines}")
