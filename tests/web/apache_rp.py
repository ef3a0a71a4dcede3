"""Debian's Apache with mod_auth_openidc as a relying party nobody here wrote, started by the tests on a free
loopback port with its own configuration (never the system instance): it protects `/protected/`, whose page
shows the claims the module passes on (an SSI page echoing OIDC_CLAIM_sub and OIDC_CLAIM_acr).

Apache listens on 127.0.0.1 while Tokenward is reached as `localhost`: two sites, as an application and
its identity provider are, so Tokenward's SameSite=Strict cookies behave as they would in production.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import requests

MODULES = Path("/usr/lib/apache2/modules")
NEEDED_MODULES = {
    "mpm_event_module": "mod_mpm_event.so",
    "authn_core_module": "mod_authn_core.so",
    "authz_core_module": "mod_authz_core.so",
    "authz_user_module": "mod_authz_user.so",
    "include_module": "mod_include.so",
    "auth_openidc_module": "mod_auth_openidc.so",
}
STARTUP_SECONDS = 20.0
CLAIMS_PAGE = """<!doctype html>
<html><head><title>Protected</title></head><body>
<h1>Protected page</h1>
<p>sub: <span id="sub"><!--#echo var="OIDC_CLAIM_sub" --></span></p>
<p>acr: <span id="acr"><!--#echo var="OIDC_CLAIM_acr" --></span></p>
<p>user: <span id="user"><!--#echo var="OIDC_CLAIM_preferred_username" --></span></p>
</body></html>
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def apache_binary() -> str:
    """apache2 and the module, or an AssertionError saying what to install: a missing one fails the test."""
    binary = shutil.which("apache2") or shutil.which("apache2", path="/usr/sbin")
    missing = [str(MODULES / name) for name in NEEDED_MODULES.values() if not (MODULES / name).exists()]
    if binary is None or missing:
        raise AssertionError(
            "Apache with mod_auth_openidc is needed: apt-get install apache2 libapache2-mod-auth-openidc "
            f"(scripts/test does it); missing: {'apache2 ' if binary is None else ''}{' '.join(missing)}"
        )
    return binary


class ApacheRelyingParty:
    """A running apache2 -DFOREGROUND; a context manager that stops it."""

    def __init__(self, *, provider_url: str, client_id: str, client_secret: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.redirect_uri = f"{self.url}/protected/redirect_uri"
        # World-readable: the workers run as www-data when the tests run as root.
        self.root = Path(tempfile.mkdtemp(prefix="tokenward-apache-"))
        self.root.chmod(0o755)
        self.process: subprocess.Popen[bytes] | None = None
        self._provider_url, self._client_id, self._client_secret = provider_url, client_id, client_secret

    @staticmethod
    def redirect_uri_for(port: int) -> str:
        return f"http://127.0.0.1:{port}/protected/redirect_uri"

    def _write_config(self) -> Path:
        docs = self.root / "docs" / "protected"
        docs.mkdir(parents=True)
        (self.root / "docs").chmod(0o755)
        docs.chmod(0o755)
        page = docs / "index.shtml"
        page.write_text(CLAIMS_PAGE)
        page.chmod(0o644)
        loads = "\n".join(f"LoadModule {name} {MODULES / file}" for name, file in NEEDED_MODULES.items())
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        config = self.root / "httpd.conf"
        config.write_text(
            f"""ServerRoot "{self.root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile "{self.root}/httpd.pid"
DefaultRuntimeDir "{self.root}"
ErrorLog "{self.root}/error.log"
LogLevel warn auth_openidc:info
{user}{loads}
DocumentRoot "{self.root}/docs"

OIDCProviderMetadataURL {self._provider_url}/.well-known/openid-configuration
OIDCClientID {self._client_id}
OIDCClientSecret {self._client_secret}
OIDCRedirectURI {self.redirect_uri}
OIDCCryptoPassphrase {secrets.token_hex(16)}
OIDCScope "openid profile"
OIDCPKCEMethod S256
OIDCProviderTokenEndpointAuth client_secret_basic
OIDCSSLValidateServer Off
OIDCPassClaimsAs environment

<Directory "{self.root}/docs/protected">
  AuthType openid-connect
  Require valid-user
  Options +Includes
  SetOutputFilter INCLUDES
  ForceType text/html
</Directory>
"""
        )
        config.chmod(0o644)
        return config

    def start(self) -> ApacheRelyingParty:
        binary = apache_binary()
        config = self._write_config()
        check = subprocess.run([binary, "-t", "-f", str(config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"apache2 -t refused the configuration:\n{check.stderr}"
        with (self.root / "stderr.log").open("wb") as stderr:
            self.process = subprocess.Popen(
                [binary, "-f", str(config), "-DFOREGROUND"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            self._await_answer(time.monotonic() + STARTUP_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def _await_answer(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"apache2 exited with {self.process.returncode}\n{self.log()}")
            try:
                requests.get(self.url + "/", timeout=1)
                return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"apache2 did not answer in time\n{self.log()}")
            time.sleep(0.05)  # polling interval, not a wait for readiness

    def log(self) -> str:
        parts = []
        for name in ("error.log", "stderr.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-6000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ApacheRelyingParty:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
