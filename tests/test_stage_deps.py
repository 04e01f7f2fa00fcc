"""dvc.yaml lists exactly the code each stage runs.

A stage whose code changed but is not among its deps gives a stale result with a clean
`dvc status`; a dep the stage never imports re-runs it for nothing. The import closure
of every stage script (inside mlprune/ and stages/) is computed from the source and
compared with the stage's deps.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mlprune", "stages")


def module_file(name: str) -> Path | None:
    """The project file of dotted module `name`, or None outside the project."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement anywhere in `path` names, with `from a import b`
    giving both `a` and `a.b` (b may be a submodule)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def parents(name: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_closure(script: Path) -> set[Path]:
    """The project files that running `script` imports, transitively (itself included)."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            for module in (*parents(name), name):
                file = module_file(module)
                if file is not None:
                    todo.append(file)
    return seen


def is_docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body) or (
        path == ROOT / "mlprune/__init__.py")


def covered(files: set[Path], deps: list[str]) -> set[Path]:
    """The files among `files` that a dep (file or folder) covers."""
    return {f for f in files if any(f == ROOT / d or (ROOT / d) in f.parents for d in deps)}


def code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if d.split("/")[0] in PACKAGES]


def stages() -> dict[str, dict]:
    """Every stage of dvc.yaml (a foreach group as its `do` template) that runs a stage script."""
    found = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        found[name] = stage.get("do", stage)
    return found


def script_of(stage: dict) -> Path:
    words = stage["cmd"].split()
    return ROOT / words[words.index("python") + 1]


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_module_is_a_dep(name: str) -> None:
    stage = stages()[name]
    # Package __init__ files that hold only a docstring (or mlprune's __version__) cannot
    # change a result, so a stage need not list them.
    needed = {f for f in import_closure(script_of(stage)) if not (f.name == "__init__.py" and is_docstring_only(f))}
    missing = sorted(str(f.relative_to(ROOT)) for f in needed - covered(needed, code_deps(stage)))
    assert not missing, f"stage {name} imports these without listing them in deps: {missing}"


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_code_dep_is_imported(name: str) -> None:
    stage = stages()[name]
    closure = import_closure(script_of(stage))
    for dep in code_deps(stage):
        path = ROOT / dep
        files = set(path.rglob("*.py")) if path.is_dir() else {path}
        unused = sorted(str(f.relative_to(ROOT)) for f in files - closure)
        assert not unused, f"stage {name}: dep {dep} covers files the stage never imports: {unused}"


def test_the_closure_follows_submodules_and_lazy_imports(tmp_path: Path) -> None:
    closure = import_closure(ROOT / "stages/surgery.py")
    assert ROOT / "mlprune/pruning/surgery.py" in closure
    assert ROOT / "mlprune/models/family.py" in closure  # through checkpoint -> models.arch
    assert ROOT / "mlprune/data/splits.py" not in closure  # surgery reads no dataset
