"""Outages under load: the broker stopped, PostgreSQL restarted under running workers, the S3 server stopped
for a minute. Every upload meanwhile is accepted (201) or refused with a clear 503, never a 500, and every
accepted submission is scored once the service is back.

    python benchmarks/fault_outages.py [--outage 60] [--only broker,postgres,s3]

Real services of the script's own, so that the machine's shared ones are never touched: a PostgreSQL
cluster (initdb in a temporary folder, run as the postgres user, port 55432), a Redis server with an
append-only file as docker/compose.yml runs it (port 6391), a SeaweedFS S3 server; two scoring workers and
the maintenance worker with beat (tests/leaderboard/faults.py). Uploads go through the whole Django stack
(the API client, every middleware), in this process. Prints, per outage, the answers to the uploads made
during it, how long the scoring took to catch up once the service was back, and whether anything was
lost. Exit 1 on a 500, a lost submission, or a split scored twice.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from faultbench import setup  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql") / (sorted(os.listdir("/usr/lib/postgresql"))[-1] if Path(
    "/usr/lib/postgresql").exists() else "15") / "bin"


class PrivatePostgres:
    """A PostgreSQL cluster of this script's own (trust auth on 127.0.0.1:port)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT, cwd=self.dir)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                          "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A Redis server with an append-only file, as docker/compose.yml runs the broker."""

    def __init__(self, port: int) -> None:
        self.port, self.dir, self.process = port, Path(tempfile.mkdtemp(prefix="fault-redis-")), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--appendonly", "yes", "--dir", str(self.dir), "--save", ""],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def services(args: argparse.Namespace) -> Iterator[tuple[PrivatePostgres, PrivateRedis, object, str]]:
    from tests.leaderboard.s3 import seaweedfs_s3

    pg, broker = PrivatePostgres(args.pg_port), PrivateRedis(args.redis_port)
    pg.start()
    broker.start()
    try:
        with seaweedfs_s3(Path(tempfile.mkdtemp(prefix="fault-s3-"))) as s3:
            bucket = "egomask-faults"
            s3.client().create_bucket(Bucket=bucket)
            yield pg, broker, s3, bucket
    finally:
        broker.stop()
        pg.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds each service stays down")
    parser.add_argument("--only", default="broker,postgres,s3")
    parser.add_argument("--uploads", type=int, default=3, help="uploads before and during each outage")
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--database", default="egomask_outages")
    args = parser.parse_args()

    with services(args) as (pg, broker, s3, bucket):
        os.environ.update({"S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3.endpoint, "S3_ACCESS_KEY_ID": s3.access_key,
                           "S3_SECRET_ACCESS_KEY": s3.secret_key, "CELERY_BROKER_URL": broker.url})
        world = setup(args.database, admin_url=pg.admin_url)
        return run(args, world, pg, broker, s3)


def run(args: argparse.Namespace, world: dict, pg: PrivatePostgres, broker: PrivateRedis, s3: object) -> int:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connections

    from leaderboard.submissions.models import Submission
    from tests.leaderboard import faults
    from tests.leaderboard.apiclient import client_for

    phase, user = world["phase"], world["user"]
    token_client = client_for(user)
    url = f"/api/v1/phases/{phase.pk}/submissions/"
    accepted: list[int] = []
    report = []
    failed = False

    def upload() -> int:
        response = token_client.post(url, {"file": SimpleUploadedFile("p.zip", world["new_zip"]()),
                                           "method_name": "M"}, format="multipart")
        if response.status_code in (200, 201):
            accepted.append(response.json()["id"])
        elif response.status_code == 503:
            assert response["Retry-After"] and response.json()["error"].startswith("The server cannot reach")
        return response.status_code

    def catch_up(since: float) -> float:
        while True:
            try:
                connections.close_all()
                if Submission.objects.filter(pk__in=accepted, status__in=Submission.TERMINAL).count() == len(accepted):
                    return time.monotonic() - since
            except Exception:  # the database may still be coming back
                pass
            if time.monotonic() - since > 600:
                raise AssertionError("not all scored ten minutes after recovery")
            time.sleep(0.5)

    logs = Path(tempfile.mkdtemp(prefix="fault-outages-"))
    with faults.Cluster(broker.url, logs, delay="1,2") as cluster:
        for _ in range(args.uploads):
            upload()
        catch_up(time.monotonic())
        outages = {"broker": (broker.stop, broker.start), "postgres": (pg.stop, pg.start),
                   "s3": (s3.stop, s3.start)}
        for name in args.only.split(","):
            down, up = outages[name]
            for _ in range(args.uploads):  # queued or being scored when the service goes away
                upload()
            down()
            went_down = time.monotonic()
            answers = collections.Counter()
            while time.monotonic() - went_down < args.outage:
                answers[upload()] += 1
                time.sleep(max(1.0, args.outage / (4 * args.uploads)))
            up()
            back = time.monotonic()
            connections.close_all()
            answers_after = collections.Counter(upload() for _ in range(args.uploads))
            seconds = catch_up(back)
            report.append((name, dict(answers), dict(answers_after), seconds))
            failed |= 500 in answers or 500 in answers_after
            print(f"{name:8s} down {args.outage:.0f} s · answers while down {dict(answers)} · after "
                  f"{dict(answers_after)} · all scored {seconds:.1f} s after it came back", flush=True)
        connections.close_all()
        states = collections.Counter(Submission.objects.filter(pk__in=accepted).values_list("status", flat=True))
        duplicates = faults.duplicate_scores(accepted)
    lost = len(accepted) - states.get("finished", 0)
    print(f"accepted {len(accepted)} · finished {states.get('finished', 0)} · other states "
          f"{ {k: v for k, v in states.items() if k != 'finished'} } · splits scored twice {len(duplicates)}")
    ok = not failed and lost == 0 and not duplicates
    print("OK" if ok else f"FAILED (worker logs in {logs})\n{cluster.logs() if not ok else ''}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
