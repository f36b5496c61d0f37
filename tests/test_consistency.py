"""An edit is written only with what it needs: reliances, companions, added imports, compiling."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import VisitorBasedCodemodCommand

from claun_migrate.codemods._support import add_companion, rely_on, stamp
from claun_migrate.engine import consistency, migrate


class Directives(VisitorBasedCodemodCommand):
    """Renames ``foo`` to ``bar``; comment lines ask for more: ``# prepend: CODE`` adds a
    statement, ``# rely: PATH`` declares a reliance, ``# companion: PATH`` asks for a file."""

    DESCRIPTION = "edits driven by comments"
    TRIGGERS = ("foo",)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body = list(updated_node.body)
        for line in original_node.code.splitlines():
            key, _, value = line.partition(": ")
            if key == "# prepend":
                body.insert(0, cst.parse_statement(value + "\n"))
            elif key == "# rely":
                rely_on(self.context, value)
            elif key == "# companion":
                add_companion(self.context, value, stamp(value, "1.0", "VALUE = 1\n"))
        return updated_node.with_changes(body=body)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if updated_node.value == "foo":
            return updated_node.with_changes(value="bar")
        return updated_node


REGISTRY = {"directives": Directives}


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUN_MIGRATE_CACHE_DIR", str(tmp_path / "state"))


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def apply(root: Path):
    return migrate([root], registry=REGISTRY, jobs=1, write=True)


def errors(result) -> dict[str, str]:
    return {e.path.name: e.message for e in result.errors}


def test_a_change_relying_on_a_failed_file_is_held_back_transitively(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "src",
        {
            "layer.py": "foo = (\n",
            "routes.py": "# rely: layer.py\nfoo = 1\n",
            "views.py": "# rely: routes.py\nfoo = 2\n",
            "other.py": "foo = 3\n",
        },
    )
    result = apply(root)
    found = errors(result)
    assert found["layer.py"].startswith("cannot parse")
    assert found["routes.py"].startswith("not migrated: it relies on layer.py, which failed")
    assert found["views.py"].startswith("not migrated: it relies on routes.py, which is held back")
    assert [c.path.name for c in result.changes] == ["other.py"]
    assert (root / "routes.py").read_text() == "# rely: layer.py\nfoo = 1\n"
    assert (root / "views.py").read_text() == "# rely: routes.py\nfoo = 2\n"
    assert (root / "other.py").read_text() == "bar = 3\n"


def test_reliance_on_a_file_that_does_not_exist_holds_the_change_back(tmp_path: Path) -> None:
    root = tree(tmp_path / "src", {"a.py": "# rely: gone.py\nfoo = 1\n"})
    result = apply(root)
    assert errors(result) == {"a.py": "not migrated: it relies on gone.py, which does not exist"}
    assert (root / "a.py").read_text() == "# rely: gone.py\nfoo = 1\n"


def test_reliance_on_an_unchanged_existing_file_is_met(tmp_path: Path) -> None:
    root = tree(tmp_path / "src", {"a.py": "# rely: b.py\nfoo = 1\n", "b.py": "done = 1\n"})
    result = apply(root)
    assert result.errors == []
    assert (root / "a.py").read_text() == "# rely: b.py\nbar = 1\n"


def test_a_companion_only_a_held_back_file_asked_for_is_not_written(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "src",
        {"broken.py": "foo = (\n", "a.py": "# companion: helper.py\n# rely: broken.py\nfoo = 1\n"},
    )
    result = apply(root)
    assert set(errors(result)) == {"broken.py", "a.py"}
    assert not (root / "helper.py").exists()
    assert result.changes == []


def test_a_file_relying_on_a_companion_that_is_not_written_is_held_back(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "src",
        {
            "broken.py": "foo = (\n",
            "a.py": "# companion: helper.py\n# rely: broken.py\nfoo = 1\n",
            "b.py": "# rely: helper.py\nfoo = 2\n",
        },
    )
    found = errors(apply(root))
    assert found["b.py"].startswith("not migrated: it relies on helper.py")
    assert (root / "b.py").read_text() == "# rely: helper.py\nfoo = 2\n"


def test_an_added_import_of_a_missing_project_module_holds_the_file_back(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "src",
        {
            "pkg/__init__.py": "",
            "pkg/present.py": "x = 1\n",
            "pkg/a.py": "# prepend: from pkg.missing import x\nfoo = 1\n",
            "pkg/b.py": "# prepend: from pkg.present import x\nfoo = 2\n",
            "pkg/c.py": "# prepend: import json\nfoo = 3\n",
            "pkg/d.py": "# prepend: from .missing import x\nfoo = 4\n",
        },
    )
    result = apply(root)
    assert errors(result) == {
        "a.py": "the migration adds `from pkg.missing import x`, which names a module of the "
        "project that does not exist and that this run does not create",
        "d.py": "the migration adds `from .missing import x`, which names a module of the "
        "project that does not exist and that this run does not create",
    }
    assert sorted(c.path.name for c in result.changes) == ["b.py", "c.py"]
    assert (root / "pkg/a.py").read_text() == "# prepend: from pkg.missing import x\nfoo = 1\n"


def test_an_added_import_of_a_companion_created_in_the_run_resolves(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "src",
        {
            "app/__init__.py": "",
            "app/a.py": "# companion: helper.py\n"
            "# prepend: from app.helper import VALUE\nfoo = 1\n",
            "app/b.py": "# prepend: from .helper import VALUE\nfoo = 2\n",
        },
    )
    result = apply(root)
    assert result.errors == []
    assert (root / "app/helper.py").exists()
    assert "\nfrom .helper import VALUE\nbar = 2\n" in (root / "app/b.py").read_text()


def test_a_change_that_does_not_compile_is_held_back_with_what_relies_on_it(
    tmp_path: Path,
) -> None:
    root = tree(
        tmp_path / "src",
        {
            "a.py": "# prepend: def f(x, x): pass\nfoo = 1\n",
            "b.py": "# rely: a.py\nfoo = 2\n",
            "c.py": "foo = 3\n",
        },
    )
    result = apply(root)
    found = errors(result)
    assert found["a.py"].startswith("the migrated code does not compile: SyntaxError: duplicate")
    assert found["b.py"].startswith("not migrated: it relies on a.py")
    assert [c.path.name for c in result.changes] == ["c.py"]


def test_written_files_that_fail_the_checks_on_disk_are_all_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last gate: should a check before writing miss a problem, the written tree is
    checked again and every file of the run restored."""
    monkeypatch.setattr(consistency, "problems", lambda *args: None)
    files = {"a.py": "# prepend: def f(x, x): pass\nfoo = 1\n", "c.py": "foo = 3\n"}
    root = tree(tmp_path / "src", files)
    result = apply(root)
    assert [(e.path.name, "does not compile" in e.message) for e in result.errors] == [
        ("a.py", True)
    ]
    assert "every file of this run was restored" in result.errors[0].message
    assert result.changes == []
    assert {p.name: p.read_text() for p in root.iterdir()} == files


@pytest.mark.parametrize(
    ("added", "missing"),
    [
        ("from pkg.sub import name", False),
        ("from pkg.sub import other", True),
        ("from .sub import name", False),
        ("from .sub import other", True),
        ("from pkg import nothing", True),
        ("import pkg.sub", False),
        ("from pkg import sub", False),
        ("from pkg.nope import name", True),
        ("import pkg.nope", True),
        ("import requests", False),
        ("from . import sub", False),
        ("from .nope import x", True),
        ("from .. import top", False),
    ],
)
def test_added_imports_resolve_against_the_package_root(
    tmp_path: Path, added: str, missing: bool
) -> None:
    files = {"pkg/__init__.py": "", "pkg/sub.py": "name = 1\n", "top.py": "", "pkg/mod.py": ""}
    tree(tmp_path, files)
    (imported,) = consistency.added_imports("x = 1\n", added + "\n")
    view = consistency.Tree()
    found = consistency.unresolved(tmp_path / "pkg/mod.py", imported, tmp_path, view)
    assert bool(found) is missing


FIXTURE = Path(__file__).resolve().parent.parent / "fixtures/legacy_backend/backend"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "damage"),
    [("app/services/database.py", "def (:\n"), ("app/services/db_sqlite.py", "mine = 1\n")],
    ids=["layer-does-not-parse", "runtime-copy-not-ours"],
)
def test_the_fixture_is_never_left_importing_a_layer_that_was_not_written(
    tmp_path: Path, path: str, damage: str
) -> None:
    """The real codemods on the fixture: when the data layer (or its runtime copy) cannot be
    migrated, every file still compiles and every runtime module a file imports is there
    (issue 8's app.py importing a db_sqlite.py that was never written)."""
    import ast
    import shutil

    root = tmp_path / "backend"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    target = root / path
    target.write_text((target.read_text() if target.exists() else "") + damage)
    result = migrate([root], jobs=1, write=True)
    assert result.errors
    for module in root.rglob("*.py"):
        if module == target:
            continue
        tree = ast.parse(module.read_text())  # compiles, too
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] in {
                "db_sqlite",
                "db_pool",
                "db_rows",
            }:
                base = module.parent
                for _ in range(node.level - 1):
                    base = base.parent
                bases = [base] if node.level else [module.parent, root]  # flat apps too
                candidates = [b.joinpath(*node.module.split(".")).with_suffix(".py") for b in bases]
                imported = next((c for c in candidates if c.is_file()), candidates[-1])
                assert imported.is_file(), f"{module} imports {node.module}, not written"
                defined = consistency._defined(imported.read_text())
                assert defined is not None
                assert {a.name for a in node.names} <= defined, (module, imported)


def test_a_reliance_given_as_an_absolute_path_matches_a_relative_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree(tmp_path / "src", {"layer.py": "foo = (\n"})
    (root / "a.py").write_text(f"# rely: {root / 'layer.py'}\nfoo = 1\n")
    monkeypatch.chdir(tmp_path)
    result = migrate([Path("src")], registry=REGISTRY, jobs=1, write=True)
    assert errors(result)["a.py"].startswith("not migrated: it relies on layer.py, which failed")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("x = 1\n", "import os\nx = 1\n"),
        ("x = 1\n", "x = 1; import os\n"),
        ("from m import (\n    a,\n)\n", "from m import (\n    a,\n    b,\n)\n"),
        ("from m import a, \\\n    b\n", "from m import a, \\\n    b, c\n"),
    ],
)
def test_every_way_an_edit_can_add_an_import_is_seen(before: str, after: str) -> None:
    assert consistency.added_imports(before, after)


def test_an_edit_that_adds_no_import_line_adds_no_import() -> None:
    before = "from m import (\n    a,\n)\n\nrow = rows[0]\nx = row[1]\n"
    assert consistency.added_imports(before, before.replace("row[1]", 'row["name"]')) == set()


@pytest.mark.parametrize(
    ("importer", "added", "missing"),
    [
        ("shop/utils/db.py", "from db_pool import getconn", True),  # the folder is not on sys.path
        ("shop/utils/db.py", "from .db_pool import getconn", False),
        ("shop/__init__.py", "from db_pool import getconn", True),
        ("shop/__init__.py", "from shop.utils.db_pool import getconn", False),
        ("flat/app.py", "from db_pool import getconn", False),  # a flat app runs from its folder
    ],
)
def test_an_import_of_a_module_the_run_creates_must_resolve_where_python_looks(
    tmp_path: Path, importer: str, added: str, missing: bool
) -> None:
    tree(tmp_path, {"shop/__init__.py": "", "shop/utils/db.py": "", "flat/app.py": ""})
    created = {tmp_path / "shop/utils/db_pool.py": "def getconn(): ...\n"}
    created[tmp_path / "flat/db_pool.py"] = "def getconn(): ...\n"
    (imported,) = consistency.added_imports("x = 1\n", added + "\n")
    view = consistency.Tree(created)
    found = consistency.unresolved(tmp_path / importer, imported, tmp_path, view)
    assert bool(found) is missing, found


def test_imports_guarded_by_an_import_error_fallback_are_not_checked() -> None:
    guarded = "try:\n    from .db_rows import f\nexcept ImportError:\n    from db_rows import f\n"
    assert consistency.added_imports("x = 1\n", "x = 1\n" + guarded) == set()
