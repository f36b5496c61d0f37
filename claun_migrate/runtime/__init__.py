"""Modules shipped into migrated backends (copied to ``app/services/``).

``db_pool`` (connection pool), ``db_rows`` (rows readable by position and by name) and
``db_sqlite`` (per-request SQLite, ``%s`` placeholders on SQLite). They depend on
psycopg2, the standard library and, lazily, Flask; they import each other only
relatively and never import ``claun_migrate``.
"""
