"""Packages that load their public names on first use list each name once, in ``_EXPORTS``; the
``if TYPE_CHECKING:`` imports that let mypy and IDEs see those names, and ``__all__``, must say the same,
and every name must load from the module the mapping names."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "bedrock_budget"
KNOWN_LAZY = {"bedrock_budget", "bedrock_budget.budgets", "bedrock_budget.metrics", "bedrock_budget.testing"}


def package_name(init: Path) -> str:
    return ".".join(init.parent.relative_to(PACKAGE.parent).parts)


def lazy_packages() -> dict[str, ast.Module]:
    """Every package whose ``__init__`` calls ``lazy_exports``, with its parsed source."""
    found = {}
    for init in sorted(PACKAGE.rglob("__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        if any(
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy_exports"
            for node in ast.walk(tree)
        ):
            found[package_name(init)] = tree
    return found


def exports_of(tree: ast.Module) -> dict[str, str]:
    """The ``_EXPORTS`` dict literal: name -> home module as written."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "_EXPORTS":
            assert node.value is not None
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError("no _EXPORTS mapping")


def absolute(home: str, package: str) -> str:
    return importlib.util.resolve_name(home, package)


def type_checking_imports(tree: ast.Module, package: str) -> list[tuple[str, str, str | None]]:
    """``(home module, name, alias)`` of every import under ``if TYPE_CHECKING:``."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
                home = "." * statement.level + (statement.module or "")
                found += [(absolute(home, package), a.name, a.asname) for a in statement.names]
    return found


LAZY = lazy_packages()


def test_the_known_lazy_packages_are_found() -> None:
    assert set(LAZY) >= KNOWN_LAZY


def test_no_package_writes_its_own_module_getattr() -> None:
    hand_written = []
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name in {"__getattr__", "__dir__"} for n in tree.body):
            hand_written.append(package_name(init))
    assert hand_written == []


@pytest.mark.parametrize("name", sorted(LAZY))
def test_type_checking_imports_re_export_exactly_the_mapping(name: str) -> None:
    mapping = {key: absolute(home, name) for key, home in exports_of(LAZY[name]).items()}
    imports = type_checking_imports(LAZY[name], name)
    assert sorted(imported for _, imported, _ in imports) == sorted(mapping)
    for home, imported, alias in imports:
        assert mapping[imported] == home, imported
        # ``import x as x`` is what marks a name re-exported for mypy --strict and for IDEs.
        assert alias == imported, f"{name}: write 'from {home} import {imported} as {imported}'"


@pytest.mark.parametrize("name", sorted(LAZY))
def test_all_lists_the_mapping_and_only_names_the_package_holds(name: str) -> None:
    module = importlib.import_module(name)
    mapping = exports_of(LAZY[name])
    assert len(module.__all__) == len(set(module.__all__))
    assert set(mapping) <= set(module.__all__)
    eager = set(module.__all__) - set(mapping)
    assert eager <= set(vars(module)), eager - set(vars(module))
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("name", sorted(LAZY))
def test_every_name_loads_from_its_home_and_stays_loaded(name: str) -> None:
    module = importlib.import_module(name)
    for export, home in exports_of(LAZY[name]).items():
        expected = getattr(importlib.import_module(absolute(home, name)), export)
        assert getattr(module, export) is expected, export
        assert vars(module)[export] is expected, export


@pytest.mark.parametrize("name", sorted(LAZY))
def test_an_unknown_name_is_an_attribute_error(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'no_such_name'"):
        _ = module.no_such_name


def test_the_root_package_hands_out_subpackages() -> None:
    import bedrock_budget

    assert bedrock_budget.metrics is importlib.import_module("bedrock_budget.metrics")


def test_importing_the_lazy_packages_loads_none_of_their_exports() -> None:
    code = (
        "import sys, bedrock_budget, bedrock_budget.metrics, bedrock_budget.testing\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('bedrock_budget'))\n"
        "expected = ['bedrock_budget', 'bedrock_budget._lazy_exports', 'bedrock_budget.metrics',"
        " 'bedrock_budget.testing']\n"
        "assert loaded == expected, loaded\n"
        "assert 'prometheus_client' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
