"""claun-migrate: move a connect-per-call data layer to a pool, per-request SQLite, named rows."""

__version__ = "0.1.0"
