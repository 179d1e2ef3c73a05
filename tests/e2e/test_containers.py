"""What each compose service runs, run the way its container would run it, with no container engine.

Every service built from the Dockerfile is started from `docker-compose
config` (or the compose file read the same way): the image's ENTRYPOINT with
the service's command, the image's ENV under the service's environment, as
an unprivileged user, in a read-only copy of the image's WORKDIR, with the
directories the Dockerfile gives its user as the only writable folders
(`tests/support/container.py` says what is replaced and why). Then each must
start and stay up, do its job against loopback sites, and pass its own
health check.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.compose import Image, Service, compose_services, read_dockerfile, read_env_file
from tests.support.container import Sandbox, stop
from tests.support.helpers import http_get, wait_for
from tests.support.paths import ROOT
from tests.support.sites import sources_yaml
from worker.keys import Keys
from worker.ops.redis_server import free_port
from worker.settings import Settings

pytestmark = pytest.mark.slow

WIRE_SERVICES = {"worker-fetch", "worker-process", "beat", "serve"}


def interpolation() -> dict[str, str]:
    """What an operator following the docs gives compose: the example's settings as `.env`, plus loopback
    fetching, which the test's sites need (a setting passed through like any other)."""
    return {**read_env_file(ROOT / "config" / "wire.env.example"), "WIRE_ALLOW_PRIVATE_ADDRESSES": "true"}


@pytest.fixture
def deployment(site_server) -> Iterator[tuple[Image, dict[str, Service], Sandbox]]:
    image = read_dockerfile(ROOT / "Dockerfile")
    every = compose_services(ROOT, interpolation())
    services = {name: s for name, s in every.items() if s.built}
    assert set(services) == WIRE_SERVICES, "a service was added or removed: say what this test should see of it"
    sandbox = Sandbox(image, services, ROOT, frozenset(every))
    _, sites = site_server
    try:
        env = sandbox.environment("beat", "redis://redis", 0)
        prefix = Settings.from_env(env).key_prefix
        # the operator's sources file, bind-mounted from ./config, names the loopback sites
        Path(env["WIRE_SOURCES"]).write_text(sources_yaml(sites).replace("ROUTE_STREAM", f"{prefix}:items:ap"))
        sandbox.seal()
        yield image, services, sandbox
    finally:
        sandbox.remove()


def test_each_service_starts_and_stays_up_as_its_container_would(deployment, redis_db_url: str) -> None:
    """worker-fetch, worker-process, beat and serve, each as an unprivileged user in a read-only app
    folder with only the image's user directories writable: serve answers /healthz, beat keeps
    scheduling and writes its schedule where the volume is, the workers consume discover, fetch and
    process tasks into a published story, nobody exits, and every health check passes in time."""
    image, services, sandbox = deployment
    assert not image.root, f"the image runs as root (USER {image.user}): it should not"
    port = free_port()
    env = {name: sandbox.environment(name, redis_db_url, port) for name in services}
    probe = sandbox.run(["python", "-c", "import worker; print(worker.__file__)"], env["serve"], timeout=60)
    assert probe.returncode == 0 and probe.stdout.startswith(str(sandbox.app)), (
        f"the unprivileged user cannot run this interpreter on the app copy: {probe.stdout}{probe.stderr}")

    procs = {}
    try:
        for name, service in services.items():
            procs[name] = sandbox.start(name, [*image.entrypoint, *(service.command or image.cmd)], env[name])

        def up(condition: Callable[[], object]) -> Callable[[], object]:
            def check() -> object:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        raise AssertionError(f"{name} exited with status {proc.returncode}:\n{sandbox.log(name)}")
                return condition()
            return check

        def logs() -> str:
            return "\n".join(f"--- {n}\n{sandbox.log(n)}" for n in procs)

        settings = Settings.from_env(env["beat"])
        keys = Keys.for_prefix(settings.key_prefix, settings.items_stream)
        client = redis.Redis.from_url(redis_db_url, decode_responses=True)

        def heartbeat() -> dict[str, float]:
            return {str(k): float(v) for k, v in client.hgetall(keys.heartbeat()).items()}

        try:
            wait_for(up(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200), timeout=90, what="serve's /healthz")
            wait_for(up(lambda: client.exists(keys.beat_lock())), timeout=90, what="beat to take its lock and tick")
            wait_for(up(lambda: {"discover", "fetch", "process"} <= set(heartbeat())), timeout=120,
                     what="the workers to consume a discover, a fetch and a process task")
            wait_for(up(lambda: client.xlen(keys.items_stream) >= 1), timeout=120, what="a published story")
            first = heartbeat()["discover"]
            wait_for(up(lambda: heartbeat()["discover"] > first), timeout=60, what="beat to schedule discovery again")
        except AssertionError:
            print(logs())
            raise

        schedule = Path(sandbox.host_path("beat", env["beat"]["WIRE_DATA_DIR"]))
        assert list(schedule.glob("celerybeat-schedule*")), f"no schedule file in {schedule}"

        for name, service in services.items():
            if service.healthcheck is None:
                continue
            check = service.healthcheck
            started = time.monotonic()
            try:
                result = sandbox.run(list(check.argv), env[name], timeout=check.timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{name}: health check {check.argv} took over {check.timeout}s") from None
            assert result.returncode == 0, (
                f"{name}: health check {check.argv} failed ({result.returncode}, "
                f"{time.monotonic() - started:.1f}s): {result.stdout}{result.stderr}")
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited with status {proc.returncode}:\n{sandbox.log(name)}"
    finally:
        stop(procs)
