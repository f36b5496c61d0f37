"""The ``claun-migrate`` command line."""

from __future__ import annotations

import click

from claun_migrate import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claun-migrate")
def main() -> None:
    """Migrate a connect-per-call Flask data layer to a connection pool,
    per-request SQLite connections and named row access, and prove the result.

    \b
    Exit codes: 0 clean, 1 changes pending or findings, 2 usage or internal error.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
