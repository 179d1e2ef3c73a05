"""What a container of the compose file runs, read without a container engine.

`compose_services` gives each service as `docker-compose config` resolves it
(interpolation, `<<` merges, env files), running the binary when there is one
and reading the YAML the same way when there is not; `read_dockerfile` gives
what the image brings to every container (ENV, USER, WORKDIR, ENTRYPOINT, the
files it copies and the directories it hands to the user).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from worker.settings import parse_duration

COMPOSE_FILE = "docker-compose.yml"


@dataclass(frozen=True)
class Mount:
    source: str  # a named volume, or an absolute host path (a bind mount)
    target: str
    read_only: bool

    @property
    def bind(self) -> bool:
        return self.source.startswith("/")


@dataclass(frozen=True)
class Healthcheck:
    argv: tuple[str, ...]  # what the engine runs in the container: the CMD form, or sh -c for CMD-SHELL
    timeout: float  # seconds; a check that takes longer fails


@dataclass(frozen=True)
class Service:
    name: str
    built: bool  # the image is built from the project's Dockerfile
    command: tuple[str, ...]
    environment: Mapping[str, str]
    mounts: tuple[Mount, ...]
    ports: tuple[str, ...]  # the container's side of each published port
    healthcheck: Healthcheck | None


def read_env_file(path: Path) -> dict[str, str]:
    """The settings of a `.env` or env_file (`KEY=VALUE` lines; `#` lines and blank lines skipped)."""
    pairs = (env_line(line) for line in path.read_text(encoding="utf-8").splitlines())
    return dict(pair for pair in pairs if pair)


def env_line(line: str) -> tuple[str, str] | None:
    """`KEY=VALUE` as compose reads it: surrounding quotes removed, else a trailing ` # comment` dropped."""
    line = line.strip()
    if not line or line.startswith("#") or "=" not in line:
        return None
    key, _, value = line.partition("=")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    else:
        value = value.split(" #", 1)[0].rstrip()
    return key.strip(), value


def compose_services(project: Path, interpolation: Mapping[str, str], *,
                     binary: bool | None = None) -> dict[str, Service]:
    """The services of `project`'s compose file, with `interpolation` as the only variables for `${...}`.

    Read by `docker-compose config` when it is installed (or `binary` says
    so), else by `parse_compose`. Only the compose file itself is read: no
    `docker-compose.override.yml` and no `.env`, so an operator's local files
    do not change what is tested.
    """
    if binary is None:
        binary = shutil.which("docker-compose") is not None
    config = docker_compose_config(project, interpolation) if binary else parse_compose(project, interpolation)
    return {name: _service(name, spec, project) for name, spec in config["services"].items()}


def docker_compose_config(project: Path, interpolation: Mapping[str, str]) -> dict[str, Any]:
    """`docker-compose config` of `project`, parsed; an AssertionError with its message when it fails."""
    env_file = _scratch_env_file(project, interpolation)
    try:
        proc = subprocess.run(
            ["docker-compose", "--project-directory", str(project), "-f", str(project / COMPOSE_FILE),
             "--env-file", str(env_file), "config"],
            capture_output=True, text=True, env=_without_compose_variables(), timeout=60)
    finally:
        env_file.unlink()
    assert proc.returncode == 0, f"docker-compose config failed: {proc.stderr.strip()}"
    # its output is compose input again, with each `$` of a value written `$$`
    return dict(_map_strings(yaml.safe_load(proc.stdout), lambda text: text.replace("$$", "$")))


def parse_compose(project: Path, interpolation: Mapping[str, str]) -> dict[str, Any]:
    """The compose file as `docker-compose config` would give it, read with PyYAML (merge keys included)."""
    raw = yaml.safe_load((project / COMPOSE_FILE).read_text(encoding="utf-8"))
    config = _map_strings(raw, lambda text: interpolate(text, interpolation))
    for spec in config.get("services", {}).values():
        env: dict[str, str] = {}
        files = spec.pop("env_file", None) or []
        for name in [files] if isinstance(files, str) else files:
            path = project / name
            assert path.is_file(), f"Couldn't find env file: {path}"
            env.update(read_env_file(path))
        env.update(_environment(spec.get("environment"), interpolation))
        if env or "environment" in spec:
            spec["environment"] = env
    return dict(config)


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}` and `$$`."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        value = variables.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and unset:
            return arg
        if op in (":?", "?") and unset:
            raise AssertionError(f"required variable {name} is missing a value: {arg}")
        return value or ""

    return _VAR.sub(one, text)


_VAR = re.compile(r"\$\$|\$\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)")


def _map_strings(node: Any, change: Callable[[str], str]) -> Any:
    """`node` with `change` applied to every string value (not to keys)."""
    if isinstance(node, str):
        return change(node)
    if isinstance(node, dict):
        return {k: _map_strings(v, change) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, change) for v in node]
    return node


def _environment(spec: Any, shell: Mapping[str, str]) -> dict[str, str]:
    """A service's `environment` (a map or a list of KEY=VALUE); a name without a value comes from the shell."""
    pairs = spec.items() if isinstance(spec, dict) else (item.partition("=")[::2] for item in spec or [])
    out = {}
    for key, value in pairs:
        if value is None:
            if key in shell:
                out[key] = shell[key]
        else:
            out[key] = str(value)
    return out


def _service(name: str, spec: Mapping[str, Any], project: Path) -> Service:
    command = spec.get("command") or []
    check = spec.get("healthcheck") or {}
    return Service(
        name=name,
        built="build" in spec,
        command=tuple(shlex.split(command) if isinstance(command, str) else map(str, command)),
        environment={k: "" if v is None else str(v) for k, v in _environment(spec.get("environment"), {}).items()},
        mounts=tuple(_mount(v, project) for v in spec.get("volumes") or []),
        ports=tuple(str(p["target"]) if isinstance(p, Mapping) else str(p).rsplit(":", 1)[-1].split("/")[0]
                    for p in spec.get("ports") or []),
        healthcheck=_healthcheck(check) if check.get("test") and not check.get("disable") else None,
    )


def _mount(volume: str | Mapping[str, Any], project: Path) -> Mount:
    if isinstance(volume, Mapping):  # the long syntax
        source, target = str(volume.get("source", "")), str(volume["target"])
        read_only = bool(volume.get("read_only"))
    else:
        parts = volume.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    if source.startswith((".", "/", "~")):
        source = str((project / source).resolve()) if not source.startswith("/") else source
    return Mount(source, target, read_only)


def _healthcheck(check: Mapping[str, Any]) -> Healthcheck | None:
    test = check["test"]
    if isinstance(test, str):
        argv: tuple[str, ...] = ("sh", "-c", test)
    elif test[0] == "NONE":
        return None
    elif test[0] == "CMD-SHELL":
        argv = ("sh", "-c", " ".join(test[1:]))
    else:
        argv = tuple(test[1:] if test[0] == "CMD" else test)
    return Healthcheck(argv, parse_duration(check.get("timeout", "30s")))


def _scratch_env_file(project: Path, variables: Mapping[str, str]) -> Path:
    import tempfile

    fd, name = tempfile.mkstemp(prefix="wire-compose-", suffix=".env")
    with open(fd, "w", encoding="utf-8") as f:
        f.writelines(f"{k}={v}\n" for k, v in variables.items())
    return Path(name)


def _without_compose_variables() -> dict[str, str]:
    """This process's environment less what would change compose's answer (WIRE_*, COMPOSE_*, DOCKER_*)."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("WIRE_", "COMPOSE_", "DOCKER_"))}


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Image:
    env: Mapping[str, str]
    user: str | None  # USER, as written (`10001:10001`, `wire`); None: root
    uid: str | None  # USER's user as a number, when the Dockerfile says which
    home: str | None  # the user's home folder (useradd --home-dir)
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]  # the command when a service gives none
    copies: tuple[tuple[tuple[str, ...], str], ...]  # (sources in the context, absolute destination: `/` ends a folder)
    user_dirs: tuple[str, ...] = field(default=())  # directories the build creates and gives to USER

    @property
    def root(self) -> bool:
        return self.user is None or self.user.split(":")[0] in ("root", "0")


def read_dockerfile(path: Path) -> Image:
    """The facts of the final stage of a Dockerfile that decide what a container may read and write."""
    env: dict[str, str] = {}
    user = None
    workdir = "/"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    copies: list[tuple[tuple[str, ...], str]] = []
    uids: dict[str, str] = {}
    homes: dict[str, str] = {}
    owned: list[tuple[str, str]] = []  # (owner's user part, path) from chown
    for op, args in _instructions(path.read_text(encoding="utf-8")):
        if op == "FROM":
            env, user, workdir, entrypoint, cmd, copies, owned = {}, None, "/", (), (), [], []
        elif op == "ENV":
            words = shlex.split(args)
            if words and "=" not in words[0]:
                env[words[0]] = " ".join(words[1:])
            else:
                env.update(dict(w.split("=", 1) for w in words))
        elif op == "USER":
            user = args.strip()
        elif op == "WORKDIR":
            workdir = str(PurePosixPath(workdir, args.strip()))
        elif op == "ENTRYPOINT":
            entrypoint = tuple(json.loads(args)) if args.lstrip().startswith("[") else ("sh", "-c", args)
        elif op == "CMD":
            cmd = tuple(json.loads(args)) if args.lstrip().startswith("[") else ("sh", "-c", args)
        elif op in ("COPY", "ADD"):
            words = [w for w in (json.loads(args) if args.lstrip().startswith("[") else shlex.split(args))
                     if not w.startswith("--")]
            dest = str(PurePosixPath(workdir, words[-1]))
            copies.append((tuple(words[:-1]), dest + "/" if words[-1].endswith(("/", ".")) else dest))
        elif op == "RUN":
            for command in re.split(r"&&|;|\|\|", args):
                words = shlex.split(command)
                if words[:1] == ["useradd"]:
                    _useradd(words, uids, homes)
                elif words[:1] == ["chown"]:
                    paths = [w for w in words[1:] if not w.startswith("-")]
                    owned += [(paths[0].split(":")[0], str(PurePosixPath(workdir, p))) for p in paths[1:]]
    name = user.split(":")[0] if user else None
    uid = name if name is None or name.isdigit() else uids.get(name)

    def is_user(owner: str) -> bool:
        return owner == name or (uid is not None and (owner == uid or uids.get(owner) == uid))

    home = homes.get(name or "") or next((h for n, h in homes.items() if uids.get(n) == uid), None)
    return Image(env=env, user=user, uid=uid, home=home, workdir=workdir, entrypoint=entrypoint, cmd=cmd,
                 copies=tuple(copies), user_dirs=tuple(p for owner, p in owned if is_user(owner)))


def _useradd(words: list[str], uids: dict[str, str], homes: dict[str, str]) -> None:
    opts: dict[str, str] = {}
    name = ""
    it = iter(words[1:])
    for w in it:
        if w in _USERADD_VALUED:
            opts[w] = next(it, "")
        elif not w.startswith("-"):
            name = w
    uid = opts.get("--uid") or opts.get("-u")
    home = opts.get("--home-dir") or opts.get("-d")
    if name and uid:
        uids[name] = uid
    if name and home:
        homes[name] = home


_USERADD_VALUED = {"--uid", "-u", "--gid", "-g", "--home-dir", "-d", "--shell", "-s", "--groups", "-G",
                   "--comment", "-c", "--key", "-K", "--root", "-R", "--expiredate", "-e"}


def _instructions(text: str) -> Iterable[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comment lines dropped."""
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        op, _, args = logical.partition(" ")
        yield op.upper(), args.strip()
        logical = ""
