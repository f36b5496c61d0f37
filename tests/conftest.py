"""Our suite loads the PostgreSQL fixtures explicitly: the plugin is never auto-loaded."""

pytest_plugins = ["claun_migrate.proof.pytest_plugin"]
