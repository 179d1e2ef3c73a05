"""The compose file and the Dockerfile, read as `docker-compose config` and a build would read them.

What the services do when run is tests/e2e/test_containers.py; here, what
can be seen without running them: a fresh clone needs no file created, each
setting reaches the containers or is the image's for a stated reason, and
the paths the services use are ones the image's user may use.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from tests.support.compose import (
    COMPOSE_FILE,
    Service,
    compose_services,
    read_dockerfile,
    read_env_file,
)
from tests.support.paths import ROOT
from worker.settings import Settings

EXAMPLE = ROOT / "config" / "wire.env.example"

# Settings the compose file does not take from the shell or `.env`, and why.
NOT_PASSED = {
    # where things are inside the containers: the image's paths and the compose network
    "WIRE_REDIS_URL", "WIRE_BROKER_URL", "WIRE_SOURCES", "WIRE_DATA_DIR",
    # serve's address: the published port and serve's health check depend on it
    "WIRE_METRICS_HOST", "WIRE_METRICS_PORT",
    # `wire run`'s own: the compose commands size the workers, the image preloads jemalloc
    "WIRE_FETCH_CONCURRENCY", "WIRE_PROCESS_CONCURRENCY", "WIRE_MALLOC",
}


def wire_services(interpolation: dict[str, str]) -> dict[str, Service]:
    return {n: s for n, s in compose_services(ROOT, interpolation).items() if s.built}


def example_variables() -> set[str]:
    names = set()
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        name = line.lstrip("#").partition("=")[0].strip()
        if name.startswith("WIRE_") and "=" in line:
            names.add(name)
    return names


def test_a_fresh_clone_needs_no_file_created(tmp_path: Path) -> None:
    """The compose file alone, in a folder with nothing else (no config/wire.env, no .env), resolves."""
    shutil.copy(ROOT / COMPOSE_FILE, tmp_path / COMPOSE_FILE)
    services = compose_services(tmp_path, {})
    assert {"redis", "worker-fetch", "worker-process", "beat", "serve", "flower"} <= set(services)
    if shutil.which("docker-compose"):
        proc = subprocess.run(["docker-compose", "--profile", "monitoring", "config", "-q"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_each_setting_is_passed_to_the_containers_or_is_the_images() -> None:
    """A setting in the shell or `.env` reaches every wire container, except the ones NOT_PASSED names:
    `export WIRE_DATA_DIR=data` for a local `wire run` must not move a container's data into /app."""
    documented = example_variables()
    assert documented >= NOT_PASSED, f"NOT_PASSED names variables wire does not read: {NOT_PASSED - documented}"
    marked = {name: f"from-the-shell-{name}" for name in documented}
    for name, service in wire_services(marked).items():
        passed = {k for k, v in service.environment.items() if v == marked.get(k)}
        assert not passed & NOT_PASSED, f"{name} takes {sorted(passed & NOT_PASSED)} from the shell"
        missing = documented - NOT_PASSED - passed
        assert not missing, (f"{name} does not pass {sorted(missing)}: add `{sorted(missing)[0]}: "
                             f"${{{sorted(missing)[0]}:-}}` to docker-compose.yml, or to NOT_PASSED with why")


def test_settings_left_unset_are_wires_defaults() -> None:
    """With nothing in the shell or `.env`, what the compose file passes (empty values) is wire's default."""
    image = read_dockerfile(ROOT / "Dockerfile")
    for name, service in wire_services({}).items():
        env = {**image.env, **service.environment}
        given = {k: v for k, v in env.items() if v != ""}
        assert Settings.from_env(env) == Settings.from_env(given), name


def test_the_images_user_may_do_what_each_service_needs() -> None:
    """The image runs as a numeric non-root user; every wire service's data folder is absolute and the
    user's, its sources file is absolute and in the image or a mount, its volumes are where it writes;
    the entry point is wire's; serve publishes the port it listens on."""
    image = read_dockerfile(ROOT / "Dockerfile")
    assert not image.root and image.uid and image.uid.isdigit(), f"USER {image.user}: not a numeric non-root user"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert image.entrypoint[:1] and image.entrypoint[0] in scripts, f"ENTRYPOINT {image.entrypoint}"
    in_image = [dest.rstrip("/") for _, dest in image.copies]
    for name, service in wire_services({}).items():
        env = {**image.env, **service.environment}
        data, sources = env.get("WIRE_DATA_DIR", "data"), env.get("WIRE_SOURCES", "config/sources.yaml")
        assert PurePosixPath(data).is_absolute(), f"{name}: WIRE_DATA_DIR={data} depends on the working directory"
        assert data in image.user_dirs, f"{name}: WIRE_DATA_DIR={data} is not a folder the image gives its user"
        assert PurePosixPath(sources).is_absolute(), f"{name}: WIRE_SOURCES={sources} is relative"
        mounted = [m.target for m in service.mounts] + in_image
        assert any(PurePosixPath(sources).is_relative_to(d) for d in mounted), f"{name}: {sources} is not there"
        for mount in service.mounts:
            assert mount.bind or mount.target == data, (
                f"{name}: volume {mount.source} on {mount.target}, where the service writes nothing")
            assert not mount.bind or mount.read_only, f"{name}: bind mount {mount.target} is writable"
    serve = wire_services({})["serve"]
    port = {**image.env, **serve.environment}.get("WIRE_METRICS_PORT", str(Settings().metrics_port))
    assert port in serve.ports, f"serve listens on {port}, publishes {serve.ports}"
    assert "beat" in {n for n, s in wire_services({}).items() if any(not m.bind for m in s.mounts)}, \
        "beat's schedule is not on a volume: a restart would forget when each source was last discovered"


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_reading_the_yaml_gives_what_docker_compose_gives() -> None:
    """Without docker-compose the tests read the YAML themselves: the two readings agree on every service."""
    interpolation = {**read_env_file(EXAMPLE), "WIRE_ADMIN_TOKEN": "t0k$n", "WIRE_LOG_FORMAT": "console"}
    assert compose_services(ROOT, interpolation, binary=False) == compose_services(ROOT, interpolation, binary=True)
