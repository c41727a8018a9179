"""The model package's layout: a registry table imported on use, no import cycle, no metrics in training."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import vpanoptic.models as models_pkg
from vpanoptic.models.entry import ModelEntry
from vpanoptic.models.hub.zoo import SPECS
from vpanoptic.models.registry import BUILTIN, get_entry, model_names

MODELS_DIR = Path(models_pkg.__file__).parent


def fresh_modules(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_listing_names_imports_no_model_module():
    loaded = fresh_modules("from vpanoptic.models.registry import model_names; assert 'oracle' in model_names()")
    assert not {"vpanoptic.models.hub.entries", "vpanoptic.models.street.inference", "vpanoptic.models.oracle"} & loaded
    assert "transformers" not in loaded and "vpanoptic.eval" not in loaded


def test_an_entry_imports_only_its_own_family():
    loaded = fresh_modules("from vpanoptic.models.registry import get_entry; get_entry('oracle')")
    assert "vpanoptic.models.oracle" in loaded
    assert "vpanoptic.models.hub.entries" not in loaded and "vpanoptic.models.street.inference" not in loaded


def test_training_and_the_model_package_do_not_import_the_metrics():
    loaded = fresh_modules(
        "import vpanoptic.models.street.training, vpanoptic.models.street.data\n"
        "from vpanoptic.models import list_models; list_models()"
    )
    assert "vpanoptic.models.street.training" in loaded
    assert not {m for m in loaded if m == "vpanoptic.eval" or m.startswith("vpanoptic.eval.")}


def _imports(path: Path) -> set[str]:
    """vpanoptic.models.* modules imported anywhere in `path` (relative imports resolved)."""
    package = "vpanoptic." + ".".join(path.relative_to(MODELS_DIR.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package += ".__init__"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: -node.level] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("vpanoptic.models") and _module_file(n) is not None}
    return found


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for candidate in (MODELS_DIR.parent / rel.with_suffix(".py"), MODELS_DIR.parent / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_the_model_package_has_no_import_cycle() -> None:
    graph = {}
    for path in MODELS_DIR.rglob("*.py"):
        name = "vpanoptic." + ".".join(path.relative_to(MODELS_DIR.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        graph[name] = {n for n in _imports(path) if n != name}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            pytest.fail("import cycle: " + " -> ".join(trail + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            visit(dep, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        if not node.endswith(".models"):  # the package's __init__ re-exports the registry by design
            visit(node, [])
    users = {n for n, deps in graph.items() if "vpanoptic.models.registry" in deps}
    assert users <= {"vpanoptic.models"}, f"family modules import the registry: {users}"


def test_the_table_names_every_builtin_entry():
    assert set(SPECS) <= set(BUILTIN) and {"oracle", "vpanoptic-street"} <= set(BUILTIN)
    for name in model_names():
        entry = get_entry(name)
        assert isinstance(entry, ModelEntry) and entry.name == name
