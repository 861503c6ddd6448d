"""The layout's rules (issue 19), read from ivr's source with `ast`, never by importing it.

- every module under MAX_LINES lines, the ledger's migrations aside;
- the lab and the demo stay out of the runtime: nothing imports ivr.lab but ivr/lab/
  itself and the CLI's lab and demo commands (ivr/cli/lab.py), wherever the import is;
- no import cycle among ivr's modules;
- no import from a lower floor of FLOORS to a higher one.

The last two read module-level imports only: an import inside a function runs when the
function does, and one under `if TYPE_CHECKING:` never runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IVR = ROOT / "ivr"
MAX_LINES = 450
MIGRATIONS = IVR / "ledger" / "migrations"
LAB = "ivr.lab"
LAB_USERS = ("ivr.lab", "ivr.cli.lab")

# Lowest first; a module's floor is that of its longest entry (calls.records before
# calls). A module may import from its own floor and the ones below, never above.
# calls.judge (the money rules, pure) is read by config; calls.service acts on calls
# through the ledger and the PBX, as desk.service does for the desk.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("ami", "config", "calls.records", "calls.judge", "reports.period"),
    ("calls", "kit"),
    ("routing", "ledger"),
    ("reconcile", "desk", "reports", "metrics", "pbx", "calls.service", "webhooks", "callbacks"),
    ("app",),
    ("http", "console"),
    ("service",),
    ("cli", "lab"),
)


@dataclass(frozen=True)
class Module:
    name: str            # dotted: ivr.calls.journeys
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(IVR.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported (class bodies, try and if
    blocks included; function bodies and `if TYPE_CHECKING:` not)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        elif isinstance(node, ast.If) and _type_checking(node):
            yield from _module_level(node.orelse)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _module_level([child])
                elif isinstance(child, (ast.ExceptHandler, ast.match_case)):
                    yield from _module_level(child.body)


def _everywhere(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _targets(module: Module, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules an import statement names: `from ivr.calls import journeys` names
    ivr.calls.journeys, `from ivr.calls.journeys import Tracker` ivr.calls.journeys."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        package = module.package.split(".")
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    named = {f"{base}.{alias.name}" for alias in node.names}
    return {name if name in MODULES else base for name in named}


def _imports(module: Module) -> set[str]:
    """The ivr modules `module` imports at module level."""
    found = set()
    for node in _module_level(module.tree.body):
        found |= _targets(module, node)
    return {name for name in found if name in MODULES and name not in ("ivr", module.name)}


def _floor(name: str) -> int:
    inside = name.removeprefix("ivr.")
    best, floor = "", -1
    for level, entries in enumerate(FLOORS):
        for entry in entries:
            if (inside == entry or inside.startswith(entry + ".")) and len(entry) > len(best):
                best, floor = entry, level
    return floor


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


# -- the rules ------------------------------------------------------------------

def test_every_module_is_under_the_size_limit() -> None:
    too_long = {}
    for module in MODULES.values():
        lines = len(module.path.read_text(encoding="utf-8").splitlines())
        if lines >= MAX_LINES and not module.path.is_relative_to(MIGRATIONS):
            too_long[str(module.path.relative_to(ROOT))] = lines
    assert not too_long, f"modules of {MAX_LINES} lines or more: {too_long}"


def test_only_the_lab_commands_import_the_lab() -> None:
    users = sorted(f"{module.name} imports {target}"
                   for module in MODULES.values() if not _under(module.name, LAB_USERS)
                   for node in _everywhere(module.tree)
                   for target in _targets(module, node) if _under(target, (LAB,)))
    assert not users, f"the lab is a tool of the tests and the demo: {users}"


def test_every_module_has_a_floor() -> None:
    homeless = sorted(name for name in MODULES if name != "ivr" and _floor(name) < 0)
    assert not homeless, f"add them to FLOORS: {homeless}"


def test_no_import_goes_up_a_floor() -> None:
    upward = sorted(f"{name} (floor {_floor(name)}) imports {target} (floor {_floor(target)})"
                    for name, module in MODULES.items()
                    for target in _imports(module) if _floor(target) > _floor(name))
    assert not upward, "imports from a lower floor to a higher one:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = {name: _imports(module) for name, module in MODULES.items()}
    cycles = [sorted(c) for c in _components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iterative (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    found.append(component)
    return found


# -- the rules' own reading, on source literals ------------------------------------

def test_module_level_skips_functions_and_type_checking() -> None:
    tree = ast.parse("import a\nif TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
                     "try:\n    import d\nexcept ImportError:\n    import e\n"
                     "class K:\n    import f\ndef g() -> None:\n    import h\n")
    found = [alias.name for node in _module_level(tree.body) for alias in node.names]
    assert sorted(found) == ["a", "c", "d", "e", "f"]
    assert len(list(_everywhere(tree))) == 7     # h too


def test_targets_name_modules_not_their_attributes() -> None:
    module = MODULES["ivr.cli.main"]
    tree = ast.parse("from ivr.calls import journeys\nfrom ivr.calls.journeys import Tracker\n"
                     "from ivr import lab\nfrom . import run\n")
    assert [_targets(module, node) for node in _everywhere(tree)] == [
        {"ivr.calls.journeys"}, {"ivr.calls.journeys"}, {"ivr.lab"}, {"ivr.cli.run"}]


def test_components_find_a_cycle_and_leave_a_chain_alone() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert [c for c in _components(graph) if len(c) > 1] == [{"a", "b", "c"}]
    assert (_floor("ivr.calls.records"), _floor("ivr.calls.journeys"), _floor("ivr.lab.demo")) \
        == (0, 1, len(FLOORS) - 1)
