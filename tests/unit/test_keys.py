"""Every Redis key and TTL is named in worker/keys.py, under the key prefix (read from the source)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from worker import keys
from worker.keys import Keys

WORKER = Path(keys.__file__).resolve().parent
KEY_PART = re.compile(r"^:[a-z_]+(:|$)")  # what follows a prefix or namespace in a key: ":seen:", ":flash"
TTL_CALLS = ("expire", "pexpire")
HARMLESS = {"int", "float", "round", "min", "max"}


def _module_level_names(tree: ast.Module) -> set[str]:
    names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return names | {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def _findings(path: Path, root: Path = WORKER.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    mine = _module_level_names(tree)
    out = []

    def hit(node: ast.AST, what: str) -> None:
        out.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}: {what}: {ast.unparse(node)[:80]}")

    for name in sorted(n for n in mine if n.endswith("_TTL")):
        hit(next(n for n in tree.body if name in ast.unparse(n).split("=")[0]), "a TTL defined here")
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for before, after in zip(node.values, node.values[1:], strict=False):
                if (isinstance(before, ast.FormattedValue) and isinstance(after, ast.Constant)
                        and isinstance(after.value, str) and KEY_PART.match(after.value)):
                    hit(node, "a key built here")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(r"wire:[a-z_]", node.value):
            hit(node, "a key under a hard-coded prefix")
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant)
              and isinstance(node.right.value, str | bytes)):
            suffix = node.right.value.decode("latin-1") if isinstance(node.right.value, bytes) else node.right.value
            if KEY_PART.match(suffix):
                hit(node, "a key suffix appended here")
        elif isinstance(node, ast.Call):
            ttls = [k.value for k in node.keywords if k.arg in ("ex", "px")]
            if isinstance(node.func, ast.Attribute) and node.func.attr in TTL_CALLS and len(node.args) >= 2:
                ttls.append(node.args[1])
            for ttl in ttls:
                names = {n.id for n in ast.walk(ttl) if isinstance(n, ast.Name)} - HARMLESS
                if not names or names & mine:  # a number, or a constant of this module
                    hit(ttl, "a TTL spelled out here")
    return out


def test_no_key_or_ttl_is_spelled_out_outside_keys_py() -> None:
    """No module but keys.py builds a key from a prefix or namespace, hard-codes `wire:`, appends a key part,
    defines a `*_TTL`, or passes Redis a TTL that is a literal or one of its own constants."""
    found = [f for path in sorted(WORKER.rglob("*.py")) if path != Path(keys.__file__).resolve()
             for f in _findings(path)]
    assert found == []


def test_the_check_sees_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above finds each kind of key or TTL it forbids (so an empty result means something)."""
    bad = tmp_path / "bad.py"
    bad.write_text('LOCK_TTL = 30\n'
                   'def f(r, prefix, key):\n'
                   '    r.set(f"{prefix}:seen:{key}", 1, ex=300)\n'
                   '    r.set("wire:replay:x", 1)\n'
                   '    r.expire(key + ":flash", LOCK_TTL)\n')
    found = " | ".join(_findings(bad, tmp_path))
    for what in ("a TTL defined here", "a key built here", "a key under a hard-coded prefix",
                 "a key suffix appended here", "a TTL spelled out here: 300", "a TTL spelled out here: LOCK_TTL"):
        assert what in found


def test_every_key_is_under_the_prefix() -> None:
    """Each key Keys names (and a replay's namespace) starts with the configured prefix."""
    k = Keys.for_prefix("pfx")
    named = [k.seen("u"), k.source_state("s"), k.source_urls("s"), k.feed_validators("u"), k.conditional("u"),
             k.robots("o"), k.host_rate("h"), k.host_pause("h"), k.host_timeouts("h"), k.skip("u"), k.host_walls("h"),
             k.host_wall_trips("h"), k.host_wall_tripped("h"), k.pauses(), k.parked(), k.page("u", 1), k.attempts("t"), k.dedup_ns(),
             k.replay_ns("x"), k.stats(), k.metrics(), k.heartbeat(), k.started(), k.console_session("i"),
             k.console_flash("i"), k.rate_limit("login", "c", 1), k.write_probe(), k.activity_snapshots(), k.activity_guard(1), k.beat_lock(),
             k.consumer("host:1:t"), k.consumers(),
             k.trail("u"), k.trail_alias("u"),
             k.furniture("h"),
             k.items_stream, k.dead_stream]
    assert all(key.startswith("pfx:") for key in named)
    methods = {n for n, v in vars(Keys).items() if callable(v) and not n.startswith("_") and n != "for_prefix"}
    assert len(methods) == len(named) - 2, "a Keys method this test does not call"
    ns = k.dedup_ns()
    assert keys.dedup_url_key(ns, "u").startswith("pfx:dedup:")
    assert keys.dedup_story_key(ns, "00" * 8).startswith(b"pfx:dedup:")
    assert keys.dedup_bucket_key(ns, b"\0\0").startswith(b"pfx:dedup:")
