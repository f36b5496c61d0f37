"""``python -m claun_migrate``."""

from claun_migrate.cli import main

main()
