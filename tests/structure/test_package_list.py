"""The wheel ships every package in the source tree: pyproject lists packages by hand (the price tables
are a mapped package, which discovery cannot find), so a new sub-package must be added there too."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def listed_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def packages_on_disk() -> set[str]:
    """Every directory holding modules or data files (the Lua scripts are a data-only package)."""
    source = ROOT / "src"
    return {
        ".".join(path.parent.relative_to(source).parts)
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".lua", ".yaml"}
    } | {"bedrock_budget.prices"}


def test_every_package_in_the_source_tree_is_listed_for_the_wheel() -> None:
    assert packages_on_disk() - listed_packages() == set()


def test_every_listed_package_exists() -> None:
    assert listed_packages() - packages_on_disk() == set()
