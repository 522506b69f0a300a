"""The import direction of docs/ARCHITECTURE.md, checked on every module's imports (lazy ones included).

Each part of the package sits on a level; a module may import its own part and parts on lower levels
only. Parts on the same level (engine and deploy) do not import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import kdrestore

SRC = Path(kdrestore.__file__).parent
DOC = SRC.parents[1] / "docs" / "ARCHITECTURE.md"

# lowest first; the name of a part is its first dotted component under kdrestore
LEVELS: list[set[str]] = [
    {"errors", "fsutil", "version"},
    {"recipe"},
    {"registry", "config"},
    {"degrade", "models", "rundir"},
    {"data"},
    {"evaluate"},
    {"distill"},
    {"engine", "deploy"},
    {"experiments"},
    {"demo", "__init__"},  # __init__: the root package, whose public API (load, load_default) is deploy's
    {"commands"},
    {"cli"},
    {"__main__"},
]
LEVEL = {part: i for i, parts in enumerate(LEVELS) for part in parts}
# below by level, yet not to be imported: inference needs no training code
FORBIDDEN = {("deploy", "distill")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    rest = module.split(".")[1:]
    return rest[0] if rest else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every kdrestore import in the file, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "kdrestore"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "kdrestore":
                continue
            if target == "kdrestore" or (not node.module and node.level):  # `from .. import x`: modules x
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if "pretrained" in path.relative_to(SRC).parts:
            continue
        here = part_of(module_name(path)) if path != SRC / "__init__.py" else "__init__"
        for line, target in imports_of(path):
            there = part_of(target)
            if there == here:
                continue
            if there not in LEVEL or here not in LEVEL:
                bad.append(f"{path.relative_to(SRC)}:{line}: {target} (a part without a level: add it to LEVELS "
                           "and docs/ARCHITECTURE.md)")
            elif LEVEL[there] >= LEVEL[here]:
                bad.append(f"{path.relative_to(SRC)}:{line}: {here} imports {target} ({there} is not below {here})")
            elif (here, there) in FORBIDDEN:
                bad.append(f"{path.relative_to(SRC)}:{line}: {here} imports {target} ({here} may not use {there})")
    return bad


def _module_of(target: str, known: set[str]) -> str:
    """The module an import names: itself, else its package (``from .methods import build_method``)."""
    while target not in known and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def import_cycles() -> list[list[str]]:
    """Cycles in the module graph (lazy imports included), each as the list of its modules."""
    files = {module_name(p): p for p in SRC.rglob("*.py") if "pretrained" not in p.relative_to(SRC).parts}
    graph = {m: {_module_of(t, set(files)) for _, t in imports_of(p)} - {m} for m, p in files.items()}
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_import_cycles():
    assert import_cycles() == []


def test_every_part_has_a_level():
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert parts - set(LEVEL) == set()


def test_imports_follow_the_documented_direction():
    assert violations() == []


def test_the_levels_are_the_documented_ones():
    text = DOC.read_text(encoding="utf-8")
    for parts in LEVELS:
        for part in parts - {"__main__", "__init__"}:
            assert f"`{part}`" in text or f"`{part}/`" in text, f"{part} is not named in {DOC.name}"
