"""libcst codemods of claun-migrate, one per module; ``CODEMODS`` is the ordered registry.

The engine runs them in this order; ``named-rows`` comes last because ``row["x"]`` only works
once rows are the shipped row type.
"""

from __future__ import annotations

import importlib.util

from libcst.codemod import Codemod

from codemods.pool_connections import PoolConnectionsCommand
from codemods.sqlite_per_request import SqlitePerRequestCommand

CODEMODS: dict[str, type[Codemod]] = {
    "pool-connections": PoolConnectionsCommand,
    "sqlite-per-request": SqlitePerRequestCommand,
}

if importlib.util.find_spec("codemods.named_rows") is not None:
    from codemods.named_rows import NamedRowsCommand

    CODEMODS["named-rows"] = NamedRowsCommand
