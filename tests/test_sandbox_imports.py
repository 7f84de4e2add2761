"""The sandbox and its emulators stay apart from the product, read from the source's imports.

Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("bot", "commands", "integrations")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The project's modules that `path` imports, relative imports made absolute."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return {name for name in names if name.split(".")[0] in OURS}


def _graph(*folders: str) -> dict[str, set[str]]:
    return {
        _module_name(path): _imports(path)
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_emulators_import_nothing_of_the_product_but_the_serving_helper() -> None:
    emulators = "bot.sandbox.emulators"
    outside = {
        (module, name)
        for module, names in _graph("bot/sandbox/emulators").items()
        for name in names
        if not _within(name, emulators) and name != "bot.serving"
    }
    assert outside == set()


def test_the_sandbox_knows_neither_the_commands_nor_the_cli() -> None:
    found = {
        (module, name)
        for module, names in _graph("bot/sandbox").items()
        for name in names
        if _within(name, "commands") or _within(name, "bot.cli")
    }
    assert found == set()


def test_only_the_cli_reaches_into_the_sandbox_and_only_its_runner() -> None:
    product = _graph("bot", "commands", "integrations")
    found = {
        (module, name)
        for module, names in product.items()
        if not _within(module, "bot.sandbox")
        for name in names
        if _within(name, "bot.sandbox")
    }
    assert found == {("bot.cli", "bot.sandbox.runner")}
