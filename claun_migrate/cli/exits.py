"""Exit codes CI can rely on: 0 clean, 1 changes or regressions, 2 usage or internal error."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click


def internal_errors_exit_2(command: Callable[..., int | None]) -> Callable[..., None]:
    """Run ``command`` and exit with its code; an unexpected exception exits 2, never 1.

    1 means "changes pending" or "a test broke" to CI, so a crash must not look like it.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = command(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            click.echo(f"claun-migrate: internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(2)
        sys.exit(code or 0)

    return wrapper
