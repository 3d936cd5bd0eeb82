"""The layering of issue 12: the core (records, windows, metrics, formats, the spool, the
messages between stages) imports nothing from the outputs, neither directly nor through
another plogd module, so that an output can be added, changed or removed without touching
the core, and the core runs without any output installed.

Static: every plogd module is parsed with `ast`; its imports are read wherever they are
(at the top, in a function, under `if TYPE_CHECKING:`), relative ones resolved, and the
packages a module sits in count too (importing plogd.a.b runs plogd/a/__init__.py)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

PLOGD = ROOT / "plogd"

# The core, as files under plogd/ (globs); each must name a module (the last test).
CORE = ["metrics.py", "messages.py", "sketches.py", "filters.py", "files.py", "checkpoint.py",
        "monitoring.py", "stages/parse.py", "stages/aggregate.py", "formats/**/*.py"]
# The core's modules of the target layout, checked once they exist.
CORE_TO_COME = ["spool.py", "records.py", "windows.py", "core/**/*.py"]

# What the core must not reach: the outputs (the Zabbix one included, plogd/outputs/zabbix/).
OUTPUTS = ["plogd.outputs"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PLOGD.rglob("*.py")}


def imports_of(name: str, source: str, known: set[str]) -> set[str]:
    """The plogd modules that the module `name` (of `source`) imports, anywhere in it."""
    package = name.split(".") if source_is_package(name, known) else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            # `from plogd import metrics`: a module, not a name in plogd/__init__.py
            found |= {f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known}
    return {m for m in found if m == "plogd" or m.startswith("plogd.")}


def source_is_package(name: str, known: set[str]) -> bool:
    return any(other.startswith(name + ".") for other in known)


def with_packages(module: str) -> list[str]:
    """plogd.a.b -> plogd, plogd.a, plogd.a.b: what importing it runs."""
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def is_output(module: str) -> bool:
    return any(module == o or module.startswith(o + ".") for o in OUTPUTS)


def output_chain(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """The shortest chain of imports from `start` to an output module, or None."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        if is_output(module):
            return paths[module]
        for nxt in sorted(graph.get(module, ())):
            if nxt not in paths:
                paths[nxt] = paths[module] + [nxt]
                queue.append(nxt)
    return None


def top_level_imports(name: str, source: str, known: set[str]) -> set[str]:
    """What importing the module itself runs: its imports outside functions and outside
    `if TYPE_CHECKING:`."""
    tree = ast.parse(source)
    kept = [node for node in tree.body
            if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
            and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return imports_of(name, ast.unparse(ast.Module(body=kept, type_ignores=[])), known)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every import of a module counts, wherever it is written, but for the package `plogd`
    itself, which every module's import runs: there only what importing it runs counts (its
    __getattr__ imports the library API, plogd.api, when a program asks for it)."""
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        scan = top_level_imports if name == "plogd" else imports_of
        graph[name] = {p for m in scan(name, path.read_text(), known)
                       for p in with_packages(m)} - {name}
    return graph


def core_modules() -> list[str]:
    return [module_name(p) for pattern in CORE + CORE_TO_COME for p in sorted(PLOGD.glob(pattern))]


def test_the_core_imports_nothing_from_the_outputs():
    graph = import_graph(MODULES)
    chains = {name: output_chain(name, graph) for name in core_modules()}
    reached = [" -> ".join(chain) for chain in chains.values() if chain is not None]
    assert not reached, "the core reaches the outputs:\n  " + "\n  ".join(reached)


def test_importing_the_core_loads_no_output(tmp_path):
    """The same, as Python sees it: importing every core module loads nothing of
    plogd.outputs (nor zabbix-utils or prometheus_client)."""
    import subprocess
    import sys
    code = ("import sys\n" + "".join(f"import {m}\n" for m in core_modules())
            + "print(sorted(m for m in sys.modules if m.startswith(('plogd.outputs', "
              "'zabbix_utils', 'prometheus_client'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_imports_are_found_wherever_they_are_written():
    """The checker itself: relative, absolute, function-level and TYPE_CHECKING imports."""
    known = {"plogd", "plogd.outputs", "plogd.outputs.base", "plogd.stages",
             "plogd.stages.read", "plogd.metrics"}
    source = ("from typing import TYPE_CHECKING\n"
              "from ..metrics import Metric\n"
              "if TYPE_CHECKING:\n    import plogd.outputs.base\n"
              "def later():\n    from ..outputs import base\n    from . import read\n")
    assert imports_of("plogd.stages.parse", source, known) == {
        "plogd.metrics", "plogd.outputs.base", "plogd.outputs", "plogd.stages",
        "plogd.stages.read"}
    graph = {"plogd.metrics": {"plogd.monitoring"}, "plogd.monitoring": {"plogd.outputs"}}
    assert output_chain("plogd.metrics", graph) == \
        ["plogd.metrics", "plogd.monitoring", "plogd.outputs"]
    assert output_chain("plogd.monitoring", {"plogd.monitoring": set()}) is None


@pytest.mark.parametrize("pattern", CORE)
def test_every_core_pattern_names_modules(pattern):
    """A core module that moves is moved in CORE too, never silently no longer checked."""
    assert list(PLOGD.glob(pattern)), f"plogd/{pattern} is listed as core but is not there"
