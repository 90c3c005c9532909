"""ARCHITECTURE.md stays true: its map names every module, and only modules that exist; SQL
lives only in the storage layer."""

from __future__ import annotations

import ast
import fnmatch
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


# -- where SQL lives (issue 12 item 2) --------------------------------------------------------

# The storage layer: the only modules that may hold SQL (paths relative to devtrack/).
STORAGE_LAYER = ("store.py", "store_contract.py", "records.py", "queries.py", "queries_*.py",
                 "postgres/*.py")
# A statement in a string: SELECT … FROM, INSERT INTO, UPDATE … SET, DELETE FROM (as the
# library writes SQL: in capitals; prose in docstrings and messages is not looked at).
_STATEMENT = re.compile(r"\bSELECT\b[\s\S]*?\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b"
                        r"|\bDELETE\s+FROM\b")


def _string_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a module but its docstrings and bare strings;
    an f-string's text has ``{}`` where its fields are. Adjacent literals are one (Python
    joins them), so a statement split over lines is seen whole."""
    tree = ast.parse(source)
    bare = {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append((node.lineno, "".join(
                str(part.value) if isinstance(part, ast.Constant) else "{}"
                for part in node.values)))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in bare):
            found.append((node.lineno, node.value))
    return found


def sql_statements(source: str) -> list[int]:
    """The lines where a string literal of ``source`` holding an SQL statement starts."""
    return sorted({line for line, text in _string_literals(source) if _STATEMENT.search(text)})


def _in_storage_layer(module: str) -> bool:
    return any(fnmatch.fnmatch(module, pattern) for pattern in STORAGE_LAYER)


def _modules_holding_sql() -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = sql_statements(path.read_text(encoding="utf-8"))
        if lines:
            held[path.relative_to(PACKAGE).as_posix()] = lines
    return held


def test_sql_lives_only_in_the_storage_layer() -> None:
    outside = {module: lines for module, lines in _modules_holding_sql().items()
               if not _in_storage_layer(module)}
    assert not outside, (
        f"SQL outside the storage layer (module: lines): {outside}; ask the store instead: "
        "a named function in queries.py or a queries_*.py module (ARCHITECTURE.md, 'Where "
        "new code goes')")


def test_the_sql_finder_sees_statements_however_they_are_written() -> None:
    source = '''
"""Docstring: SELECT what you need FROM the store, prose is not SQL."""
A = ("SELECT id, name "
     "FROM models WHERE name = ?")
B = f"SELECT {COLUMNS} FROM runs WHERE id = {RUN}"
C = "INSERT INTO models (name) VALUES (?)"
D = """UPDATE releases
    SET status = ?"""
E = "DELETE FROM deployments"
F = "Select a release first."
def f() -> None:
    """UPDATE nothing SET here: a docstring."""
'''
    assert sql_statements(source) == [3, 5, 6, 7, 9]
    assert sql_statements((PACKAGE / "queries.py").read_text(encoding="utf-8"))  # it finds them
