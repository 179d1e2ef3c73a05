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
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
pages = [open(p, "rb").read() for p in json.loads(sys.argv[1])]
hosts, per_host = sys.argv[2].split(","), int(sys.argv[3])
ports = {}
def make(host, index):
    paths = {f"/news/{index}-{i}.html": pages[(index * per_host + i) % len(pages)] for i in range(per_host)}
    def sitemap(base):
        urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
        return ('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + urls + "</urlset>").encode()
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: with Nagle on, the body's tail waited
        # for the client's delayed ACK, and about 4 responses in 10 took 40 ms instead of 0.3
        disable_nagle_algorithm = True
        def log_message(self, *a): pass
        def do_GET(self):
            if self.path == "/sitemap.xml":
                body, ctype = sitemap(f"http://{host}:{self.server.server_address[1]}"), "application/xml"
            elif self.path in paths:
                body, ctype = paths[self.path], "text/html; charset=utf-8"
            else:
                body, ctype = b"no", "text/plain"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body); return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    s = ThreadingHTTPServer((host, 0), H); s.daemon_threads = True
    ports[host] = s.server_address[1]
    threading.Thread(target=s.serve_forever, daemon=True).start()
for i, h in enumerate(hosts):
    make(h, i)
print(json.dumps(ports), flush=True)
time.sleep(3600)
"""


def proc_tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    out, todo = [pid], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process and of its reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
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


def allocator(pid: int | str = "self") -> str:
    """The malloc a process runs on: jemalloc when it is mapped (LD_PRELOAD, as the Docker image does), else glibc's."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return "unknown"
    return "jemalloc" if "libjemalloc" in maps else "glibc malloc"


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
