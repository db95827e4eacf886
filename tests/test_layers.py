"""The package's rooms stay layered: no import cycle, no lower room importing a higher one, and
imports at the top of files unless a comment says why."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ganforge"

# Lowest first. A module may import modules of its own layer or below, never above.
LAYERS = [
    ["errors", "__init__"],
    ["io", "runtime", "augment", "losses", "distributed"],
    ["config"],
    ["data", "report.plots", "report.tensorboard", "report.__init__"],
    ["models"],
    ["validation", "presets"],
    ["metrics"],
    ["generator"],
    ["evaluate", "editing", "cache", "table"],
    ["training", "inversion"],
    ["sample", "export", "report.html"],
    ["ablate", "project", "score"],
    ["serve"],
    ["cli", "cli_explore", "cli_score", "__main__"],
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return ".".join(rel.parts)


def _layer(module: str) -> int:
    """The layer of a module name as :func:`_module_name` gives it (``io.atomic``,
    ``report.__init__``); the longest matching prefix in LAYERS decides."""
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    if best is None:
        raise AssertionError(f"module ganforge.{module} has no layer in tests/test_layers.py")
    return best[0]


def _normalise(mod: str) -> str:
    """A dotted name inside the package -> the module file it runs (``pkg`` -> ``pkg.__init__``)."""
    if not mod:
        return "__init__"
    if (SRC / (mod.replace(".", "/") + ".py")).is_file():
        return mod
    return f"{mod}.__init__"


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """The ganforge modules ``path`` imports, as module files (see :func:`_normalise`)."""
    tree = ast.parse(path.read_text())
    me = _module_name(path).split(".")
    package = me[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("ganforge"):
                mod = node.module[len("ganforge"):].lstrip(".")
            else:
                continue
            out.append((_normalise(mod), node))
            for alias in node.names:  # `from .pkg import name` may name a submodule
                sub = f"{mod}.{alias.name}" if mod else alias.name
                if (SRC / (sub.replace(".", "/") + ".py")).is_file() or (SRC / sub.replace(".", "/")).is_dir():
                    out.append((_normalise(sub), node))
        elif isinstance(node, ast.Import):
            out += [(_normalise(a.name[len("ganforge."):]), node) for a in node.names
                    if a.name.startswith("ganforge.")]
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): {m for m, _ in _imports(p) if m != _module_name(p)}
            for p in SRC.rglob("*.py")}


def test_every_module_has_a_layer_and_imports_only_downwards():
    problems = []
    for path in SRC.rglob("*.py"):
        me = _module_name(path)
        for mod, node in _imports(path):
            if _layer(mod) > _layer(me):
                problems.append(f"ganforge.{me} (line {node.lineno}) imports the higher "
                                f"ganforge.{mod}")
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_imports_inside_functions_say_why():
    problems = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    here, above = lines[sub.lineno - 1], lines[sub.lineno - 2]
                    if "#" not in here and not above.strip().startswith("#") \
                            and "#" not in above:
                        problems.append(f"{path.relative_to(SRC)}:{sub.lineno}: {here.strip()}")
    assert not problems, "imports inside functions without a reason:\n" + "\n".join(problems)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The layer rule would catch a lower room importing a higher one."""
    assert _layer("io.atomic") < _layer("training.trainer") < _layer("cli")
    assert _layer("report.plots") < _layer("generator") < _layer("report.html")
    imports = [m for m, _ in _imports(SRC / "training" / "run.py")]
    assert "io.__init__" in imports and "io.rundir" in imports and "training.step" in imports
    assert _layer("io.__init__") < _layer("training.trainer")


def test_no_module_is_too_long_to_read_in_one_sitting():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 420}
    assert not long, f"modules over ~400 lines: {long}"
