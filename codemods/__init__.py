"""libcst codemods of claun-migrate, one per module; ``CODEMODS`` is the ordered registry.

The engine runs them in this order; ``named-rows`` comes last because ``row["x"]`` only works
once rows are the shipped row type.
"""

from __future__ import annotations

from libcst.codemod import Codemod

from claun_migrate.codemods.named_rows import NamedRowsCommand
from claun_migrate.codemods.pool_connections import PoolConnectionsCommand
from claun_migrate.codemods.sqlite_per_request import SqlitePerRequestCommand

CODEMODS: dict[str, type[Codemod]] = {
    "pool-connections": PoolConnectionsCommand,
    "sqlite-per-request": SqlitePerRequestCommand,
    "named-rows": NamedRowsCommand,
}
