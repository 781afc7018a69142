"""Real processes for the operations tests: ``soundhive`` commands and nginx on loopback ports,
always stopped (terminate, then kill) and with their output kept for failure messages."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from core.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx" / "templates" / "soundhive.conf.template"


def deploy_script(name: str) -> ModuleType:
    """Import ``deploy/scripts/<name>.py`` (they are scripts, not a package)."""
    path = DEPLOY / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Proc:
    """A child process whose output goes to a file, readable with ``output()``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.log = args, log
        self._handle = log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, stdout=self._handle, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def output(self, tail: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-tail:]
        return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._handle.close()


def soundhive(args: list[str], env: dict[str, str], log: Path) -> Proc:
    return Proc([sys.executable, "-m", "core.cli", *args], env, log)


def wait_http(url: str, proc: Proc | None = None, timeout: float = 45, **kwargs: Any) -> None:
    """Until ``url`` answers 200 (the process must stay alive meanwhile)."""
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.args[3:5]} exited:\n{proc.output()}")
        try:
            if httpx.get(url, timeout=2, **kwargs).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise AssertionError(f"{url} not up in {timeout}s ({last}):\n{proc.output() if proc else ''}")


def wait_port(port: int, proc: Proc, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not proc.alive():
            raise AssertionError(f"process exited:\n{proc.output()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} not open in {timeout}s:\n{proc.output()}")


@contextlib.contextmanager
def serve(env: dict[str, str], tmp: Path, *extra: str, port: int | None = None) -> Iterator[str]:
    """``soundhive serve`` on a loopback port; yields its base URL."""
    port = port or free_port()
    proc = soundhive(["serve", "--port", str(port), *extra], env, tmp / f"serve-{port}.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


# -- nginx -------------------------------------------------------------------------------
def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def render_template(values: dict[str, str]) -> str:
    """envsubst as the nginx image does it: only the named variables; none may be left."""
    text = NGINX_TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    left = sorted(set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)))
    assert not left, f"template variables without a value: {left}"
    return text


MAIN_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/conf.d/*.conf;
}}
"""


class Nginx:
    """nginx with the repository's template on loopback ports (TLS with a self-signed cert)."""

    def __init__(self, tmp: Path, upstream: str, *, max_upload_bytes: int) -> None:
        binary = nginx_binary()
        assert binary, "nginx is not installed"
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "conf.d").mkdir(exist_ok=True)
        tls = tmp / "tls"
        deploy_script("selfsigned_cert").write_certificate(tls, "localhost", 1)
        self.ca = str(tls / "fullchain.pem")
        self.http_port, self.https_port = free_port(), free_port()
        self.access_log = tmp / "access.log"
        values = {
            "SOUNDHIVE_SERVER_NAME": "localhost",
            "SOUNDHIVE_API_UPSTREAM": upstream,
            "SOUNDHIVE_MAX_UPLOAD_BYTES": str(max_upload_bytes),
            "NGINX_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "NGINX_HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "NGINX_TLS_CERT": str(tls / "fullchain.pem"),
            "NGINX_TLS_KEY": str(tls / "privkey.pem"),
            "NGINX_TRUSTED_PROXIES": "127.0.0.1/32",
            "NGINX_ACCESS_LOG": str(self.access_log),
        }
        (tmp / "conf.d" / "soundhive.conf").write_text(render_template(values))
        user = "user root root;" if os.geteuid() == 0 else ""  # workers must reach tmp files
        (tmp / "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp, user=user))
        self.base = [
            binary,
            "-p",
            str(tmp),
            "-c",
            str(tmp / "nginx.conf"),
            "-e",
            str(tmp / "error.log"),
        ]
        self.proc: Proc | None = None

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, "-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        self.proc = Proc([*self.base, "-g", "daemon off;"], dict(os.environ), self.tmp / "out.log")
        wait_port(self.https_port, self.proc)
        wait_port(self.http_port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGQUIT, timeout=10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self, source: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTPS client trusting the test certificate, connecting from ``source``
        (another loopback address plays another client machine)."""
        import ssl

        context = ssl.create_default_context(cafile=self.ca)
        transport = httpx.HTTPTransport(verify=context, local_address=source)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30, **kwargs)

    def log_lines(self) -> list[dict[str, Any]]:
        import json

        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]

    def errors(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
