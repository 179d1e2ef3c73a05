"""A compose service run as its container would run it, on this host, without an engine.

What the container would have, the sandbox gives, and nothing more:

- WORKDIR is a read-only copy of what the Dockerfile copies there, with the
  compose file's bind mounts laid over it, and is the working directory;
- each directory the Dockerfile gives to its USER (/data) is a fresh folder
  owned by the user the service runs as, as is a named volume mounted there
  (a volume takes its owner from the image); a volume anywhere else is a
  fresh folder owned by root;
- the process runs as an unprivileged user: the test's own when it is not
  root, else `nobody` (setpriv). When this interpreter lives where `nobody`
  may not read (pyenv under /root), `nobody` also gets CAP_DAC_READ_SEARCH:
  it may read and list anything, and still writes only where `nobody` may,
  which is what the test is about;
- the environment is the image's ENV under the service's `environment`, with
  every path inside the container mapped to its folder here.

Only what this host cannot give is replaced (`Sandbox.environment`): the
address of the compose network's Redis, serve's port, the jemalloc path, and
the interpreter (PATH and PYTHONPATH, so the copy's `worker` is imported).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tests.support.compose import Image, Service

NOBODY = 65534


def run_uid() -> int:
    """The unprivileged user the services run as."""
    return NOBODY if os.geteuid() == 0 else os.geteuid()


def as_unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to run the services as an unprivileged user"
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if not _readable_by_others(Path(os.path.realpath(sys.executable)), Path(sys.base_prefix) / "lib"):
        drop += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return [*drop, "--", *argv]


def _readable_by_others(*paths: Path) -> bool:
    """Whether a user with no claim on these paths (not owner, not in the group) may read them."""
    for path in paths:
        for folder in path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        if not path.stat().st_mode & stat.S_IROTH:
            return False
    return True


class Sandbox:
    """The folders of every service's container, under one temporary root that `remove` deletes."""

    def __init__(self, image: Image, services: Mapping[str, Service], context: Path,
                 network: frozenset[str]) -> None:
        self.image = image
        self.services = services
        self.network = network  # every service name of the compose file: the host names on its network
        self.root = Path(tempfile.mkdtemp(prefix="wire-containers-"))
        self.root.chmod(0o755)  # the unprivileged user must reach the app copy below
        self.app = self.root / "app"
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self._build_app(context)
        self.mounts: dict[str, dict[str, Path]] = {name: self._service_dirs(s) for name, s in services.items()}

    def _build_app(self, context: Path) -> None:
        workdir = PurePosixPath(self.image.workdir)
        for sources, dest in self.image.copies:
            target = self.app / PurePosixPath(dest).relative_to(workdir)
            for name in sources:
                source = context / name
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    into = target / source.name if len(sources) > 1 or dest.endswith("/") else target
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, into)
        binds = {(m.source, m.target, m.read_only) for s in self.services.values() for m in s.mounts if m.bind}
        for bound, inside, _ in sorted(binds):
            assert PurePosixPath(inside).is_relative_to(workdir), f"bind mount outside WORKDIR: {inside}"
            host = self.app / PurePosixPath(inside).relative_to(workdir)
            shutil.rmtree(host, ignore_errors=True)
            shutil.copytree(bound, host, ignore=shutil.ignore_patterns("__pycache__"))

    def _service_dirs(self, service: Service) -> dict[str, Path]:
        """Container path -> host folder for this service: WORKDIR, the user's directories, its volumes."""
        dirs = {self.image.workdir: self.app}
        base = self.root / service.name
        for path in self.image.user_dirs:
            dirs[path] = self._fresh(base / path.lstrip("/"), run_uid())
        for mount in service.mounts:
            if not mount.bind and mount.target not in dirs:
                dirs[mount.target] = self._fresh(base / mount.target.lstrip("/"), 0)
        return dirs

    def _fresh(self, path: Path, uid: int) -> Path:
        path.mkdir(parents=True)
        for p in [path, *path.parents]:
            if p == self.root:
                break
            p.chmod(0o755)
        if os.geteuid() == 0:
            os.chown(path, uid, uid)
        return path

    def seal(self) -> None:
        """Make the app copy read-only, as root's /app is to the image's user."""
        for dirpath, _dirs, filenames in os.walk(self.app):
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o444)
            os.chmod(dirpath, 0o555)

    def host_path(self, service: str, path: str) -> str:
        """A path inside `service`'s container as a path here (unchanged when nothing is mapped there)."""
        if not path.startswith("/"):
            return path
        for inside, host in sorted(self.mounts[service].items(), key=lambda kv: -len(kv[0])):
            if path == inside or path.startswith(inside.rstrip("/") + "/"):
                return str(host / PurePosixPath(path).relative_to(inside))
        return path

    def environment(self, service: str, redis_url: str, metrics_port: int) -> dict[str, str]:
        """What `service`'s process gets: the image's ENV under the service's, paths mapped, and the host's
        stand-ins for the compose network's Redis, serve's port, jemalloc and the interpreter."""
        spec = self.services[service]
        env = {"LANG": "C.UTF-8", "HOME": self.image.home or self.image.workdir}
        env.update(self.image.env)
        env.update(spec.environment)
        env = {k: self.host_path(service, v) for k, v in env.items()}
        compose_redis = urlsplit(env.get("WIRE_REDIS_URL", "")).hostname
        assert compose_redis in self.network, \
            f"{service}: WIRE_REDIS_URL names {compose_redis!r}, not a service of the compose file"
        env["WIRE_REDIS_URL"] = redis_url
        env["WIRE_METRICS_PORT"] = str(metrics_port)
        from worker.ops.malloc import find_jemalloc

        jemalloc = find_jemalloc()
        if "LD_PRELOAD" in env:
            if jemalloc:
                env["LD_PRELOAD"] = jemalloc
            else:
                del env["LD_PRELOAD"]
        env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
        env["PYTHONPATH"] = str(self.app)
        return env

    def start(self, service: str, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{service}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(as_unprivileged(argv), env=dict(env), cwd=self.app, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, argv: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(as_unprivileged(argv), env=dict(env), cwd=self.app, capture_output=True,
                              text=True, timeout=timeout)

    def log(self, service: str) -> str:
        path = self.logs / f"{service}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def remove(self) -> None:
        for dirpath, _dirs, _files in os.walk(self.app):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(self.root)


def stop(procs: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
