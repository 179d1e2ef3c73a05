"""One exception tree, in worker/errors.py, drawn in its docstring (read from the source, not run)."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
from pathlib import Path

from worker import errors

WORKER = Path(errors.__file__).resolve().parent
TREE_LINE = re.compile(r"^    (?P<bars>(?:[│ ]   )*)(?:[├└]── )?(?P<name>[A-Z]\w+)\s{2,}\S")


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(WORKER.rglob("*.py")):
        parts = path.relative_to(WORKER.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return out


def _resolve(expr: ast.expr, namespace: dict[str, object]) -> object:
    """The object an expression names in a module (a Name or a dotted Attribute), or None."""
    if isinstance(expr, ast.Name):
        return namespace.get(expr.id, getattr(builtins, expr.id, None))
    if isinstance(expr, ast.Attribute):
        owner = _resolve(expr.value, namespace)
        return getattr(owner, expr.attr, None) if owner is not None else None
    return None


def _is_exception(obj: object) -> bool:
    return inspect.isclass(obj) and issubclass(obj, BaseException)


def _drawn_tree() -> dict[str, str | None]:
    """Class name -> its parent's name, as drawn in errors.py's docstring."""
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        m = TREE_LINE.match(line)
        if not m:
            continue
        depth = len(m["bars"]) // 4 + (1 if line.lstrip(" │").startswith(("├", "└")) else 0)
        stack[depth:] = [m["name"]]
        parents[m["name"]] = stack[depth - 1] if depth else None
    return parents


def _wire_classes() -> dict[str, type]:
    return {name: obj for name, obj in vars(errors).items()
            if _is_exception(obj) and obj.__module__ == errors.__name__}


def test_no_exception_class_is_defined_outside_errors_py() -> None:
    """Every class in worker/ that derives from an exception (directly or not) is defined in errors.py."""
    elsewhere = []
    for name, tree in _modules():
        if name == "worker.errors":
            continue
        namespace = vars(importlib.import_module(name))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [_resolve(b, namespace) for b in node.bases]
                if any(_is_exception(b) for b in bases):
                    elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []


def test_every_raised_wire_exception_is_in_the_tree() -> None:
    """Each `raise` in worker/ of a WorkerError subclass raises a class of errors.py that is drawn in the tree;
    every class of the tree is raised somewhere, or is the parent of one that is."""
    drawn = _drawn_tree()
    raised: set[str] = set()
    strays = []
    for name, tree in _modules():
        namespace = vars(importlib.import_module(name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                cls = _resolve(target, namespace)
                if _is_exception(cls) and issubclass(cls, errors.WorkerError):  # type: ignore[arg-type]
                    raised.add(cls.__name__)  # type: ignore[union-attr]
                    if cls.__module__ != errors.__name__ or cls.__name__ not in drawn:  # type: ignore[union-attr]
                        strays.append(f"{name}:{node.lineno} raises {cls!r}")
    assert strays == []
    used = set(raised)
    for cls_name in raised:
        parent = drawn.get(cls_name)
        while parent is not None:
            used.add(parent)
            parent = drawn.get(parent)
    assert set(_wire_classes()) - used == set(), "classes in errors.py that nothing raises"


def test_the_drawn_tree_is_the_class_tree() -> None:
    """The docstring draws exactly the classes of errors.py, each under its real parent, rooted at WorkerError."""
    drawn = _drawn_tree()
    classes = _wire_classes()
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        parent = next((b.__name__ for b in cls.__bases__ if b.__module__ == errors.__name__), None)
        assert drawn[name] == parent, name
    assert [n for n, p in drawn.items() if p is None] == ["WorkerError"]
