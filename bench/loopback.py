"""What the end-to-end and fetch benchmarks share: the loopback news server and /proc readings.

The server is a separate process serving real news pages at many URLs on
several loopback hosts (one sitemap per host), so the workers fetch over
real TCP sockets and the server's CPU is visible on its own.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "corpus" / "extraction" / "scrapinghub"
CLK = os.sysconf("SC_CLK_TCK")

SERVER = r"""
# One asyncio loop answers every host from responses built once: the server is
# not part of wire, and its CPU is charged to the machine the workers share
# (http.server took ~0.3 ms of CPU per page, this ~0.1). Headers and body go
# out in one write, so Nagle's algorithm has no tail to hold back.
import asyncio, json, sys
pages = [open(p, "rb").read() for p in json.loads(sys.argv[1])]
hosts, per_host = sys.argv[2].split(","), int(sys.argv[3])

def head(status, ctype, length):
    return f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n".encode()

NOT_FOUND = (head("404 Not Found", "text/plain", 2), b"no")

class Site(asyncio.Protocol):
    def __init__(self, routes):
        self.routes, self.buf = routes, b""
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.buf += data
        while b"\r\n\r\n" in self.buf:  # requests on one connection, one after another
            request, _, self.buf = self.buf.partition(b"\r\n\r\n")
            words = request.split(b"\r\n", 1)[0].split()
            self.transport.writelines(self.routes.get(words[1] if len(words) > 1 else b"", NOT_FOUND))

async def main():
    ports, servers = {}, []
    for index, host in enumerate(hosts):
        routes = {}
        server = await asyncio.get_running_loop().create_server(lambda r=routes: Site(r), host, 0)
        port = server.sockets[0].getsockname()[1]
        paths = {f"/news/{index}-{i}.html": pages[(index * per_host + i) % len(pages)] for i in range(per_host)}
        for path, body in paths.items():
            routes[path.encode()] = (head("200 OK", "text/html; charset=utf-8", len(body)), body)
        sitemap = ('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                   + "".join(f"<url><loc>http://{host}:{port}{p}</loc></url>" for p in paths) + "</urlset>").encode()
        routes[b"/sitemap.xml"] = (head("200 OK", "application/xml", len(sitemap)), sitemap)
        ports[host] = port
        servers.append(server)
    print(json.dumps(ports), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...); None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(entry)) is not None:
            kids.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [pid], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process and of its reaped children."""
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def context_switches(pid: int) -> tuple[int, int] | None:
    """Voluntary and involuntary context switches of all of a process's threads; None once it is gone.

    Voluntary: the thread slept (waited on a socket, a lock). Involuntary:
    the scheduler gave its core to another task while it could still run.
    """
    vol = invol = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol += int(line.split()[1])
    except OSError:
        return None
    return vol, invol


def machine_cpu() -> float:
    """CPU seconds all cores spent not idle, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK


def load_pages(data: Path) -> list[Path]:
    out = []
    tmp = Path(tempfile.mkdtemp(prefix="wire-bench-pages-"))
    for path in sorted((data / "pages").iterdir()):
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        target = tmp / path.name.removesuffix(".gz")
        target.write_bytes(raw)
        out.append(target)
    return out


def redis_calls(client: Any) -> dict[str, Any]:
    """What the run asked of Redis: commands by name (calls, server microseconds), round trips, bytes."""
    commands = {name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
                for name, v in client.info("commandstats").items()}
    stats = client.info("stats")
    return {"commands": commands, "reads": int(stats.get("total_reads_processed", 0)),
            "in": int(stats.get("total_net_input_bytes", 0)), "out": int(stats.get("total_net_output_bytes", 0))}


def start_page_server(page_files: list[Path], hosts: list[str], per_host: int) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """The loopback news server in its own process; the port of each host."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps([str(p) for p in page_files]),
                               ",".join(hosts), str(per_host)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, json.loads(server.stdout.readline())


def page_urls(hosts: list[str], ports: dict[str, int], per_host: int) -> list[str]:
    """Every article URL the server answers, host by host."""
    return [f"http://{h}:{ports[h]}/news/{i}-{j}.html" for i, h in enumerate(hosts) for j in range(per_host)]


def worker_env(work: Path, redis_url: str, hosts: list[str], ports: dict[str, int],
               extra: dict[str, str]) -> dict[str, str]:
    """The environment of the benchmark's wire processes: one source per host (sitemap, pacing raised
    to 10,000 requests/s), a private Redis, warnings-only JSON logs; `extra` WIRE_ settings last."""
    sources = work / "sources.yaml"
    sources.write_text("sources:\n" + "".join(
        f"- name: host{i}\n  sitemaps: ['http://{h}:{ports[h]}/sitemap.xml']\n  interval: 1h\n  rate: 10000\n"
        for i, h in enumerate(hosts)))
    return {**{k: v for k, v in os.environ.items() if not k.startswith("WIRE_")},
            "WIRE_REDIS_URL": redis_url, "WIRE_SOURCES": str(sources), "WIRE_ALLOW_PRIVATE_ADDRESSES": "1",
            "WIRE_LOG_LEVEL": "WARNING", "WIRE_LOG_FORMAT": "json", "WIRE_DATA_DIR": str(work / "data"), **extra}
