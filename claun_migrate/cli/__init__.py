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
    Exit codes: 0 clean; 1 changes pending (check, diff), a test that broke
    (verify, apply --verify) or a failed request (bench); 2 usage or internal error.
    """


from claun_migrate.cli.migrate import COMMANDS as MIGRATE_COMMANDS  # noqa: E402
from claun_migrate.proof.bench import bench_command  # noqa: E402
from claun_migrate.proof.verify import verify_command  # noqa: E402

for _command in MIGRATE_COMMANDS:
    main.add_command(_command)
main.add_command(verify_command)
main.add_command(bench_command)


if __name__ == "__main__":  # pragma: no cover
    main()
