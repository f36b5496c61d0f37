"""libcst codemods of claun-migrate, one per module."""
