"""Real servers on loopback for the distributed tests: PostgreSQL, Redis, SeaweedFS, Celery workers.

Each starts as a supervised process group (`deepdecipher.supervise`) in a temporary folder and is
stopped by the fixture that started it. PostgreSQL refuses to run as root, so as root it runs as
the ``postgres`` user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from deepdecipher.supervise import start_child, stop_children

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not listen on {port} within {timeout}s")


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run scripts/setup.sh")
    return found


@dataclass
class _Server:
    """One server process on a free loopback port, with a temporary folder removed on stop."""

    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dd-server-")))
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_children([self.proc])
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Postgres(_Server):
    """A PostgreSQL server in a temporary data directory, trust auth for user ``dd``."""

    def _user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        pw = pwd.getpwnam("postgres")
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def start(self) -> Postgres:
        as_user = self._user()
        data = self.root / "data"
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(data), "-U", "dd", "--auth=trust", "-E", "UTF8"],
            check=True, capture_output=True, cwd=self.root, **as_user,
        )  # fmt: skip
        self.proc = start_child(
            [_pg_bin("postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(self.root), "-F", "-c", "max_connections=200"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **as_user,
        )  # fmt: skip
        wait_for_port(self.port, self.proc, "postgres")
        return self

    def create_database(self, name: str) -> str:
        """Create database `name`; return its URL."""
        for _ in range(50):  # the server accepts TCP a moment before it accepts logins
            done = subprocess.run(
                [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "dd", name],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode == 0:
                return f"postgresql+psycopg2://dd@127.0.0.1:{self.port}/{name}"
            time.sleep(0.2)
        raise RuntimeError(done.stderr)


@dataclass
class Redis(_Server):
    """redis-server without persistence: the Celery broker and result backend."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        server = shutil.which("redis-server")
        if not server:
            raise RuntimeError("redis-server is missing: run scripts/setup.sh")
        self.proc = start_child(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.proc, "redis-server")
        return self


@dataclass
class SeaweedFS:
    """``weed server`` (master, volume, filer, S3 gateway) with every port on loopback."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dd-weed-")))
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> SeaweedFS:
        names = ["master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3",
                 "s3.grpc"]  # fmt: skip
        self.ports = self.ports or {n: free_port() for n in names}
        flags = [f"-{n.replace('.grpc', '.port.grpc')}={p}" for n, p in self.ports.items()]
        flags = [f.replace("-master=", "-master.port=").replace("-volume=", "-volume.port=")
                 .replace("-filer=", "-filer.port=").replace("-s3=", "-s3.port=") for f in flags]  # fmt: skip
        self.proc = start_child(
            [str(BIN / "weed"), "server", f"-dir={self.root}", "-ip=127.0.0.1",
             "-ip.bind=127.0.0.1", "-s3", *flags, "-s3.port.iceberg=0", "-s3.port.lance=0",
             "-master.telemetry=false", "-iam=false", "-master.volumeSizeLimitMB=64",
             "-volume.max=0"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.ports["s3"], self.proc, "weed server")
        return self

    def create_bucket(self, name: str) -> None:
        # host:port.grpcport, since the gRPC ports are not the default http port + 10000
        master = f"{self.ports['master']}.{self.ports['master.grpc']}"
        filer = f"{self.ports['filer']}.{self.ports['filer.grpc']}"
        deadline = time.monotonic() + 60
        while True:  # the shell needs the cluster (volume servers) up, a few seconds after start
            done = subprocess.run(
                [str(BIN / "weed"), "shell", f"-master=127.0.0.1:{master}",
                 f"-filer=127.0.0.1:{filer}"],
                input=f"s3.bucket.create -name {name}\ns3.bucket.list\n",
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if name in done.stdout:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"bucket {name} not created: {done.stdout} {done.stderr}")
            time.sleep(1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_children([self.proc], grace=60)  # a clean stop: SIGKILL only if it hangs
            self.proc = None

    def restart(self) -> None:
        """Stop the server and start it again on the same folder and ports."""
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def s3_env(weed: SeaweedFS) -> dict[str, str]:
    """What delta-rs needs to reach SeaweedFS (which accepts any key when no identities are set)."""
    return {
        "AWS_ENDPOINT_URL": weed.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "deepdecipher",
        "AWS_SECRET_ACCESS_KEY": "deepdecipher",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_celery_worker(name: str, env: dict[str, str]) -> subprocess.Popen:
    """A Celery worker with one pool process on the ``dagster`` queue, configured as deployed:
    deploy/celery/dagster_celery_config.py reads the broker from ``DEEPDECIPHER_CELERY_BROKER``."""
    return start_child(
        [str(BIN / "celery"), "-A", "dagster_celery.app", "worker", "--concurrency=1",
         "--pool=prefork", "--prefetch-multiplier=1", "-Q", "dagster", "-n", f"{name}@%h",
         "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=REPO,
        env={**env, "PYTHONPATH": os.pathsep.join([str(REPO / "deploy" / "celery"), str(REPO)])},
    )  # fmt: skip
