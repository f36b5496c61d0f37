"""The codemods' base class: libcst's visitor semantics on one plain walk."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from claun_migrate.codemods._support import Command


class Upper(Command):
    """Names upper-cased, except inside calls to ``keep``."""

    def visit_Call(self, node: cst.Call) -> bool:
        return not (isinstance(node.func, cst.Name) and node.func.value == "keep")

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return updated_node.with_changes(value=updated_node.value.upper())


def test_visit_and_leave_hooks_run_and_a_false_visit_skips_the_children() -> None:
    tree = cst.parse_module("a = keep(b) + c\n")
    assert Upper(CodemodContext()).transform_module(tree).code == "A = keep(b) + C\n"


def test_a_codemod_with_an_attribute_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="visit_Call_func"):

        class Hooked(Command):  # noqa: F841
            def visit_Call_func(self, node: cst.Call) -> None:
                pass
