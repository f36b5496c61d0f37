"""Read SQL with sqlglot: the tables a schema declares and the columns a query returns.

Column names must be the ones both drivers put in ``cursor.description`` (psycopg2 and
sqlite3), because the runtime row type takes its names from there. Where the two could
disagree (functions and literals without an alias, mixed-case unquoted names) the column is
unnamed, and a query whose column list is unclear yields no names at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

Schema = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Column:
    """One output column: its name as both drivers report it (None if unnamed) and its SQL."""

    name: str | None
    sql: str


@dataclass(frozen=True)
class Columns:
    """What a statement returns: the columns, or None with the reason they are unknown."""

    columns: tuple[Column, ...] | None
    problem: str = ""


def _parse(sql: str) -> list[exp.Expression]:
    """All statements in ``sql`` (PostgreSQL dialect, then SQLite); [] if neither parses."""
    for dialect in ("postgres", "sqlite"):
        try:
            return [statement for statement in sqlglot.parse(sql, read=dialect) if statement]
        except SqlglotError:
            continue
    return []


def _driver_name(identifier: exp.Identifier | None) -> str | None:
    """The name both drivers report: quoted as written, unquoted only when lowercase."""
    if identifier is None or not identifier.name:
        return None
    name = identifier.name
    return name if identifier.quoted or name == name.lower() else None


def create_tables(sql: str) -> dict[str, list[str] | None]:
    """The columns of each ``CREATE TABLE`` in ``sql`` by lowercase table name; None if altered."""
    tables: dict[str, list[str] | None] = {}
    for statement in _parse(sql):
        if isinstance(statement, exp.Alter) and isinstance(statement.this, exp.Table):
            tables[statement.this.name.lower()] = None
        if not isinstance(statement, exp.Create) or statement.kind != "TABLE":
            continue
        schema = statement.this
        if isinstance(schema, exp.Schema) and isinstance(schema.this, exp.Table):
            columns = [
                column.name for column in schema.expressions if isinstance(column, exp.ColumnDef)
            ]
            tables[schema.this.name.lower()] = columns
    return tables


def _sources(select: exp.Select) -> list[tuple[str, exp.Expression]] | None:
    """The FROM and JOIN sources in order as (alias or name, source); None if unsupported."""
    from_ = select.args.get("from_")
    if from_ is None:
        return []
    joins = select.args.get("joins") or []
    if any(join.args.get("using") or join.args.get("method") for join in joins):
        return None
    sources = [from_.this, *(join.this for join in joins)]
    return [(source.alias_or_name.lower(), source) for source in sources]


def _expand_star(
    select: exp.Select, qualifier: str, schema: Schema, ctes: set[str]
) -> tuple[list[Column] | None, str]:
    """Columns that ``*`` (or ``qualifier.*``) stands for, from the CREATE TABLE statements."""
    sources = _sources(select)
    if sources is None:
        return None, "`*` over a JOIN with USING or NATURAL"
    if qualifier:
        sources = [(alias, source) for alias, source in sources if alias == qualifier.lower()]
    if not sources:
        return None, f"`{qualifier}.*` names no FROM table" if qualifier else "`*` without FROM"
    columns: list[Column] = []
    for _, source in sources:
        table = source.name.lower() if isinstance(source, exp.Table) else ""
        if not table or table in ctes or table not in schema:
            star = f"{qualifier}.*" if qualifier else "*"
            return None, f"`{star}` over `{source.sql()}`, which no CREATE TABLE declares"
        columns += [Column(_driver_name(exp.to_identifier(name)), name) for name in schema[table]]
    return columns, ""


def _mixed_case(schema: Schema) -> set[str]:
    """Lowercased declared column names that are not all lowercase."""
    return {name.lower() for columns in schema.values() for name in columns if name != name.lower()}


def _output_columns(
    select: exp.Select, expressions: list[exp.Expression], schema: Schema, ctes: set[str]
) -> Columns:
    columns: list[Column] = []
    for expression in expressions:
        if isinstance(expression, exp.Star) or (
            isinstance(expression, exp.Column) and isinstance(expression.this, exp.Star)
        ):
            qualifier = expression.table if isinstance(expression, exp.Column) else ""
            expanded, problem = _expand_star(select, qualifier, schema, ctes)
            if expanded is None:
                return Columns(None, problem)
            columns += expanded
        elif isinstance(expression, exp.Alias):
            columns.append(Column(_driver_name(expression.args.get("alias")), expression.sql()))
        elif isinstance(expression, exp.Column):
            name = _driver_name(expression.this)
            if name and name.lower() in _mixed_case(schema):  # SQLite reports the declared case
                name = None
            columns.append(Column(name, expression.sql()))
        else:
            columns.append(Column(None, expression.sql()))
    return Columns(tuple(columns))


def output_columns(sql: str, schema: Schema) -> Columns:
    """The columns a single SELECT (or a statement with RETURNING) gives back, in order."""
    statements = _parse(sql)
    if len(statements) != 1:
        return Columns(None, "the SQL does not parse as one statement")
    statement = statements[0]
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    while isinstance(statement, exp.SetOperation | exp.Subquery):  # `(SELECT ...) EXCEPT (...)`
        statement = statement.left if isinstance(statement, exp.SetOperation) else statement.this
    if isinstance(statement, exp.Select):
        return _output_columns(statement, statement.expressions, schema, ctes)
    returning = statement.args.get("returning")
    if isinstance(statement, (exp.Insert, exp.Update, exp.Delete)) and returning:
        table = statement.find(exp.Table)
        select = exp.select("*").from_(table.copy()) if table else exp.select("*")
        return _output_columns(select, returning.expressions, schema, ctes)
    return Columns(None, f"the `{statement.key.upper()}` statement returns no rows")
