"""The `wire` command line. Each command reads settings once and exits non-zero on failure;
configuration errors exit with status 2 and name the file (or variable) and field.

This module holds the `wire` group and its entry point (`main`); the commands
live in one module per group: `processes` (run, worker, beat, serve), `status`
(status, health), `reingest`, `dlq`, `dedup` (dedup replay, explain),
`furniture`, `sources` (sources check) and `extract`. `common` holds what they
share. `python -m worker.ops.cli` runs `main`.
"""

from __future__ import annotations

import sys

import click
import redis

from ...errors import ConfigError, WorkerError
from .dedup import dedup, explain
from .dlq import dlq
from .extract import extract
from .furniture import furniture
from .processes import beat, run, serve, worker
from .reingest import reingest_cmd
from .sources import sources
from .status import health, status


@click.group()
@click.version_option(package_name="wire")
def cli() -> None:
    """wire: discover, fetch, clean, deduplicate and publish news stories."""


for command in (run, worker, beat, serve, sources, extract, status, health, reingest_cmd, dlq, dedup, explain,
                furniture):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except redis.ConnectionError as exc:
        click.echo(f"error: redis unreachable: {exc}", err=True)
        sys.exit(1)
    except WorkerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
