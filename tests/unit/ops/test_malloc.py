"""The allocator `wire run` starts its processes on (worker.ops.malloc), and WIRE_MALLOC."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.ops import malloc
from worker.settings import MALLOC_MODES, Settings

LIB = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def test_auto_preloads_jemalloc_when_it_is_installed() -> None:
    choice = malloc.choose("auto", {}, library=LIB)
    assert choice.env == {"LD_PRELOAD": LIB} and choice.allocator == "jemalloc" and LIB in choice.detail


def test_auto_without_the_library_falls_back_to_glibc_and_says_how_to_install_it() -> None:
    choice = malloc.choose("auto", {}, library=None)
    assert choice.env == {} and choice.allocator == "glibc malloc"
    assert "libjemalloc2" in choice.detail


def test_jemalloc_required_without_the_library_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="WIRE_MALLOC.*libjemalloc2"):
        malloc.choose("jemalloc", {}, library=None)


def test_system_leaves_glibc_even_when_jemalloc_is_installed() -> None:
    choice = malloc.choose("system", {}, library=LIB)
    assert choice.env == {} and choice.allocator == "glibc malloc"


def test_a_preload_that_names_jemalloc_already_is_kept_as_it_is() -> None:
    """The Docker image sets LD_PRELOAD itself: nothing is added, whatever the mode."""
    for mode in MALLOC_MODES:
        choice = malloc.choose(mode, {"LD_PRELOAD": "/usr/local/lib/libjemalloc.so.2"}, library=LIB)
        assert choice.env == {} and choice.allocator == "jemalloc"


def test_another_preload_is_kept_behind_jemalloc() -> None:
    choice = malloc.choose("auto", {"LD_PRELOAD": "/opt/libtrace.so"}, library=LIB)
    assert choice.env == {"LD_PRELOAD": f"{LIB}:/opt/libtrace.so"}


def test_an_unknown_mode_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="WIRE_MALLOC"):
        malloc.choose("tcmalloc", {}, library=LIB)


def test_find_jemalloc_takes_the_first_installed_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "libjemalloc.so.2").mkdir()  # a directory is not a library
    (tmp_path / "b").mkdir()
    lib = tmp_path / "b" / "libjemalloc.so.2"
    lib.write_bytes(b"\x7fELF")
    patterns = [str(tmp_path / "missing" / "libjemalloc.so.2"), str(tmp_path / "*" / "libjemalloc.so.2")]
    assert malloc.find_jemalloc(patterns) == str(lib)
    assert malloc.find_jemalloc([str(tmp_path / "missing" / "libjemalloc.so.2")]) is None


def test_the_allocator_is_read_from_the_memory_map() -> None:
    assert malloc.from_maps("7f00-7f10 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n") == "jemalloc"
    assert malloc.from_maps("7f00-7f10 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n") == "glibc malloc"
    assert malloc.in_use() in ("jemalloc", "glibc malloc")
    assert malloc.in_use(2**22 + 1) == "unknown"  # no such process


def test_settings_read_wire_malloc() -> None:
    assert Settings.from_env({}).malloc == "auto"
    assert Settings.from_env({"WIRE_MALLOC": "System"}).malloc == "system"
    with pytest.raises(ConfigError, match="WIRE_MALLOC"):
        Settings.from_env({"WIRE_MALLOC": "fast"})
