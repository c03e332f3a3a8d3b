"""The layers of docs/architecture.md, enforced: the imports that must never exist.

A small AST check over ``qualys_connector/`` and ``input_plugins/`` (no import is executed):

- no import cycle among product modules;
- no product module imports the emulators or the developer tools beside them;
- nothing below the edge imports an edge-only module (cli, multi, edge, censys.cli, ...);
- ``report/`` does not import ``hostinput/`` (the report parser knows nothing of the FMC);
- ``input_plugins`` is imported only by the edge.

Imports under ``if TYPE_CHECKING:`` only name types and are not counted. Function-level
(lazy) imports count like any other: deferring an import does not change who depends on whom.
"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("qualys_connector", "input_plugins")

# The command-line edge: parses arguments, installs signal handlers, turns errors into exit codes.
EDGE = {"qualys_connector.cli", "qualys_connector.multi", "qualys_connector.multi_main",
        "qualys_connector.__main__", "qualys_connector.argv", "qualys_connector.edge",
        "qualys_connector.censys.cli", "qualys_connector.liveprogress", "qualys_connector.serveraddr"}
# Beside the product, never imported by it: emulators and developer tools (pki, demo).
DEV = "qualys_connector.emulators"
# Known cycles, to be removed, never added to (none left: the signal handling moved to edge.py).
ALLOWED_CYCLES: list[list[str]] = []


# ---------------------------------------------------------------- the checker
def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages under ``root``."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules that module ``name`` imports (each import mapped to a known module)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import mod`` imports the module pkg.mod when there is one, else pkg.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        for target in targets:
            module = known(target)
            # Python imports a module's parent packages before it anyway: no edge of its own.
            if module and module != name and not _under(name, module):
                found.add(module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> list[str]:
    """Every broken 'never' rule under ``root``, one line each (empty when the layers hold)."""
    graph = import_graph(root)
    product = {m: deps for m, deps in graph.items() if not _under(m, DEV)}
    problems = []
    for module, deps in sorted(product.items()):
        for dep in sorted(deps):
            if _under(dep, DEV):
                problems.append(f"{module} imports {dep}: emulators and dev tools are never imported by the product")
            if dep in EDGE and module not in EDGE:
                problems.append(f"{module} imports the edge module {dep}")
            if _under(module, "qualys_connector.report") and _under(dep, "qualys_connector.hostinput"):
                problems.append(f"{module} imports {dep}: the report parser knows nothing of host input")
            if (_under(dep, "input_plugins") and module not in EDGE
                    and not _under(module, "input_plugins")):
                problems.append(f"{module} imports {dep}: only the edge hands plugins to the core")
    for cycle in _cycles(product):
        if root == REPO and cycle in ALLOWED_CYCLES:
            continue
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


# ---------------------------------------------------------------- the product
def test_the_product_keeps_its_layers():
    assert violations(REPO) == []


def test_the_checker_sees_the_real_imports():
    graph = import_graph(REPO)
    assert "input_plugins" in graph["qualys_connector.cli"]
    assert "qualys_connector.text" in graph["qualys_connector.report.hosts"]
    assert "qualys_connector.hostinput.codec" in graph["qualys_connector.hostinput.builders"]
    assert "qualys_connector.plugin" in graph["qualys_connector.pipeline"]
    # a lazy, function-level import counts too
    assert "qualys_connector.qualys.api" in graph["input_plugins.qualysguard"]
    # a TYPE_CHECKING import does not (runinfo names InputPlugin only as a type)
    assert "qualys_connector.plugin" not in graph["qualys_connector.runinfo"]


# ---------------------------------------------------------------- the checker on a synthetic tree
def make_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {
        "qualys_connector/__init__.py": "",
        "qualys_connector/cli.py": "import input_plugins\nfrom .pipeline import run\n",
        "qualys_connector/pipeline.py": "from .report import reader\nfrom .hostinput import codec\n",
        "qualys_connector/text.py": "",
        "qualys_connector/report/__init__.py": "",
        "qualys_connector/report/reader.py": "from ..text import clean_text\n",
        "qualys_connector/hostinput/__init__.py": "from .codec import encode\n",
        "qualys_connector/hostinput/codec.py": "",
        "qualys_connector/emulators/__init__.py": "",
        "qualys_connector/emulators/pki.py": "from ..hostinput import codec\n",
        "input_plugins/__init__.py": "from qualys_connector.text import clean_text\n",
    }
    base.update(files)
    for name, text in base.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_clean_synthetic_tree_passes(tmp_path):
    assert violations(make_tree(tmp_path, {})) == []


def test_the_report_importing_host_input_fails(tmp_path):
    root = make_tree(tmp_path, {"qualys_connector/report/reader.py": "from ..hostinput.codec import encode\n"})
    assert violations(root) == ["qualys_connector.report.reader imports qualys_connector.hostinput.codec: "
                                "the report parser knows nothing of host input"]


def test_the_product_importing_a_dev_tool_fails_even_lazily(tmp_path):
    root = make_tree(tmp_path, {"qualys_connector/pipeline.py": "def f():\n    from .emulators.pki import x\n"})
    assert violations(root) == ["qualys_connector.pipeline imports qualys_connector.emulators.pki: "
                                "emulators and dev tools are never imported by the product"]


def test_the_core_importing_the_edge_or_the_plugins_fails(tmp_path):
    root = make_tree(tmp_path, {"qualys_connector/pipeline.py": "import input_plugins\nfrom . import cli\n"})
    problems = violations(root)
    assert "qualys_connector.pipeline imports the edge module qualys_connector.cli" in problems
    assert "qualys_connector.pipeline imports input_plugins: only the edge hands plugins to the core" in problems


def test_an_import_cycle_fails_but_a_type_checking_import_does_not(tmp_path):
    cyclic = make_tree(tmp_path / "a", {"qualys_connector/text.py": "from .report import reader\n"})
    assert violations(cyclic) == ["import cycle: qualys_connector.report.reader -> qualys_connector.text"]
    typed = make_tree(tmp_path / "b", {"qualys_connector/text.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .report import reader\n")})
    assert violations(typed) == []


# ---------------------------------------------------------------- the layers of the diagram
DOC = REPO / "docs" / "architecture.md"
LAYERS = ("edge", "core", "plugins", "protocols", "foundations")   # top to bottom; "beside" is DEV
_TOKEN = re.compile(r"(?<![\w./])((?:[a-z_0-9]+/)*[a-z_0-9]+\.py|[a-z_0-9]+/)(?![\w/])")


def _token_module(token: str) -> str:
    """``censys/cli.py`` -> qualys_connector.censys.cli; ``report/`` -> qualys_connector.report.*
    (the package and all in it); ``input_plugins/csv.py`` -> input_plugins.csv (paths are relative
    to qualys_connector/, a package's ``__init__.py`` names the package itself)."""
    parts = token.removesuffix(".py").strip("/").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    name = ".".join(parts if parts[:1] == ["input_plugins"] else ["qualys_connector", *parts])
    return name + ".*" if token.endswith("/") else name


def diagram_layers(doc: str) -> dict[str, str]:
    """Module or package -> layer, from the first text diagram of ``doc``: a line that starts
    with a layer's name opens it; every ``x.py``, ``pkg/x.py`` and ``pkg/`` after it is in it."""
    diagram = doc.split("```")[1]
    placed: dict[str, str] = {}
    layer = None
    for line in diagram.splitlines():
        first = line.split()[0] if line.split() else ""
        if line[:1] == " " and line[1:2] != " " and first in (*LAYERS, "beside"):
            layer = first
        if layer:
            for token in _TOKEN.findall(line):
                placed.setdefault(_token_module(token), layer)
    return placed


def layer_of(module: str, placed: dict[str, str]) -> str | None:
    """The layer of the most specific entry naming ``module`` or a package holding it."""
    if module in placed:
        return placed[module]
    best = max((name for name in placed if name.endswith(".*") and _under(module, name[:-2])), key=len, default=None)
    return placed[best] if best else None


def layer_violations(root: Path, doc: str) -> list[str]:
    """Modules the diagram leaves out or names wrongly, and every import of a higher layer."""
    graph = import_graph(root)
    placed = diagram_layers(doc)
    problems = [f"{name} is named in the diagram but does not exist" for name in sorted(placed)
                if name.removesuffix(".*") not in graph]
    for module in sorted(graph):
        if layer_of(module, placed) is None:
            problems.append(f"{module} is in no layer of the diagram")
    for module, deps in sorted(graph.items()):
        mine = layer_of(module, placed)
        if mine in (None, "beside"):
            continue
        for dep in sorted(deps):
            theirs = layer_of(dep, placed)
            if theirs in LAYERS and LAYERS.index(theirs) < LAYERS.index(mine):
                problems.append(f"{module} ({mine}) imports {dep} ({theirs}): a higher layer")
    return problems


def test_every_module_sits_in_one_layer_of_the_diagram_and_imports_only_its_own_or_lower():
    assert layer_violations(REPO, DOC.read_text()) == []


def test_the_edge_of_the_never_rules_is_the_edge_layer_of_the_diagram():
    placed = diagram_layers(DOC.read_text())
    # and the plugin lookup, which only the edge may import (a never rule of its own)
    assert {m for m in import_graph(REPO) if layer_of(m, placed) == "edge"} == EDGE | {"input_plugins"}


def test_every_module_is_named_in_the_architecture_doc():
    """By its path under qualys_connector/ (``censys/events.py``), so a newcomer finds each one."""
    doc = DOC.read_text()
    missing = [str(path.relative_to(REPO / "qualys_connector")) for path in sorted((REPO / "qualys_connector").rglob("*.py"))
               if path.name != "__init__.py" and str(path.relative_to(REPO / "qualys_connector")) not in doc
               and not (path.parent.name == "qualys_connector" and path.name in doc)]
    assert missing == []


SYNTHETIC_DIAGRAM = """
```
 edge          cli.py
 core          pipeline.py
 protocols     report/  hostinput/
 foundations   text.py  __init__.py  input_plugins/
 beside        emulators/
```
"""


def test_a_lower_layer_importing_a_higher_one_fails(tmp_path):
    assert layer_violations(make_tree(tmp_path / "a", {}), SYNTHETIC_DIAGRAM) == []
    root = make_tree(tmp_path / "b", {"qualys_connector/text.py": "from .hostinput import codec\n"})
    assert layer_violations(root, SYNTHETIC_DIAGRAM) == [
        "qualys_connector.text (foundations) imports qualys_connector.hostinput.codec (protocols): a higher layer"]


def test_a_module_the_diagram_leaves_out_or_a_name_it_invents_fails(tmp_path):
    root = make_tree(tmp_path, {"qualys_connector/extra.py": ""})
    assert layer_violations(root, SYNTHETIC_DIAGRAM.replace("cli.py", "cli.py gone.py")) == [
        "qualys_connector.gone is named in the diagram but does not exist",
        "qualys_connector.extra is in no layer of the diagram"]
