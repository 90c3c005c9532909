"""ARCHITECTURE.md stays current: its map names every module, and only modules that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "devtrack"


def _map_section() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return text.split("## Map of modules", 1)[1].split("\n## ", 1)[0]


def _has_code(path: Path) -> bool:
    """A package's ``__init__.py`` holding only its docstring needs no line of its own."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               for node in body)


def _modules() -> set[str]:
    return {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
            if path.name != "__init__.py" or _has_code(path)}


def _mapped() -> set[str]:
    return set(re.findall(r"^- `([\w/]+\.py)`:", _map_section(), flags=re.MULTILINE))


def test_the_map_names_every_module() -> None:
    missing = sorted(_modules() - _mapped())
    assert not missing, (f"ARCHITECTURE.md's map of modules lacks {missing}: add one line "
                         "each saying what the module owns")


def test_the_map_names_only_modules_that_exist() -> None:
    stale = sorted(_mapped() - {p.relative_to(PACKAGE).as_posix()
                                for p in PACKAGE.rglob("*.py")})
    assert not stale, f"ARCHITECTURE.md's map names modules that do not exist: {stale}"


def test_code_cites_only_documents_in_the_repository() -> None:
    outside = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared")
    cited = [f"{path.relative_to(ROOT)}:{number}"
             for folder in (PACKAGE, ROOT / "tests", ROOT / "benchmarks")
             for path in folder.rglob("*.py")
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if outside.search(line) and path != Path(__file__).resolve()]
    assert not cited, f"these cite notes outside the repository (cite ARCHITECTURE.md): {cited}"
