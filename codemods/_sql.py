"""Read SQL with sqlglot: the tables a schema declares and the columns a query returns.

Column names must be the ones both drivers put in ``cursor.description`` (psycopg2 and
sqlite3), because the runtime row type takes its names from there. Where the two could
disagree (functions and literals without an alias, mixed-case unquoted names) the column is
unnamed, and a query whose column list is unclear yields no names at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

Schema = Mapping[str, Sequence[str]]
DIALECTS = ("postgres", "sqlite")


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


def _parse_in(sql: str) -> tuple[str, list[exp.Expression]]:
    """All statements in ``sql`` and the dialect that read them (PostgreSQL, then SQLite)."""
    for dialect in DIALECTS:
        try:
            return dialect, [s for s in sqlglot.parse(sql, read=dialect) if s]
        except SqlglotError:
            continue
    return DIALECTS[0], []


def _parse(sql: str) -> list[exp.Expression]:
    """All statements in ``sql``; [] if neither dialect parses it."""
    return _parse_in(sql)[1]


def tokenize(sql: str, dialect: str = DIALECTS[0]) -> list[Token] | None:
    """sqlglot's tokens of ``sql`` (each knows its ``start`` and inclusive ``end``), or None."""
    try:
        return Dialect.get_or_raise(dialect).tokenize(sql)
    except SqlglotError:
        return None


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


def _item_columns(
    select: exp.Select, expression: exp.Expression, schema: Schema, ctes: set[str]
) -> tuple[list[Column] | None, str]:
    """The columns one select-list item stands for (several for a star)."""
    if isinstance(expression, exp.Star) or (
        isinstance(expression, exp.Column) and isinstance(expression.this, exp.Star)
    ):
        qualifier = expression.table if isinstance(expression, exp.Column) else ""
        return _expand_star(select, qualifier, schema, ctes)
    if isinstance(expression, exp.Alias):
        return [Column(_driver_name(expression.args.get("alias")), expression.sql())], ""
    name = None
    if isinstance(expression, exp.Column):
        name = _driver_name(expression.this)
        if name and name.lower() in _mixed_case(schema):  # SQLite reports the declared case
            name = None
    return [Column(name, expression.sql())], ""


@dataclass(frozen=True)
class SelectList:
    """The select list (or RETURNING list) that names a statement's rows, item by item."""

    dialect: str
    select: exp.Select
    """The SELECT whose FROM and JOIN sources the items refer to."""
    items: tuple[tuple[exp.Expression, tuple[Column, ...]], ...]
    returning: bool


def select_list(sql: str, schema: Schema) -> SelectList | str:
    """The items naming the rows of ``sql`` with their columns, or why they are unknown."""
    dialect, statements = _parse_in(sql)
    if len(statements) != 1:
        return "the SQL does not parse as one statement"
    statement = statements[0]
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    while isinstance(statement, exp.SetOperation | exp.Subquery):  # `(SELECT ...) EXCEPT (...)`
        statement = statement.left if isinstance(statement, exp.SetOperation) else statement.this
    returning = statement.args.get("returning")
    if isinstance(statement, exp.Select):
        select, expressions = statement, statement.expressions
    elif isinstance(statement, (exp.Insert, exp.Update, exp.Delete)) and returning:
        table = statement.find(exp.Table)
        select = exp.select("*").from_(table.copy()) if table else exp.select("*")
        expressions = returning.expressions
    else:
        return f"the `{statement.key.upper()}` statement returns no rows"
    items = []
    for expression in expressions:
        columns, problem = _item_columns(select, expression, schema, ctes)
        if columns is None:
            return problem
        items.append((expression, tuple(columns)))
    return SelectList(dialect, select, tuple(items), not isinstance(statement, exp.Select))


def output_columns(sql: str, schema: Schema) -> Columns:
    """The columns a single SELECT (or a statement with RETURNING) gives back, in order."""
    found = select_list(sql, schema)
    if isinstance(found, str):
        return Columns(None, found)
    return Columns(tuple(column for _, columns in found.items for column in columns))


CLAUSE_ORDER = {
    TokenType.WHERE: 1,
    TokenType.GROUP_BY: 2,
    TokenType.HAVING: 3,
    TokenType.ORDER_BY: 4,
    TokenType.LIMIT: 5,
    TokenType.OFFSET: 6,
}
LAST_CLAUSES = frozenset((TokenType.RETURNING, TokenType.VALUES, TokenType.SEMICOLON))
CONDITIONS = frozenset((TokenType.AND, TokenType.OR))
NOT_APPENDABLE = frozenset(
    {TokenType.SELECT, TokenType.FROM, TokenType.JOIN, TokenType.UNION, TokenType.INTERSECT}
    | {TokenType.EXCEPT, TokenType.INTO, TokenType.WINDOW, *LAST_CLAUSES}
)


def _top_level(tokens: list[Token]) -> list[Token] | None:
    """The tokens outside parentheses and brackets; None if they do not balance."""
    depth, top = 0, []
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0:
            top.append(token)
    return top if depth == 0 else None


def _ends_in_line_comment(sql: str, tokens: list[Token]) -> bool:
    tail = sql[tokens[-1].end + 1 :] if tokens else sql
    return "--" in tail and "\n" not in tail[tail.rindex("--") :]


def _clause_rank(sql: str) -> tuple[int, str]:
    """The rank of the last top-level clause of ``sql`` (see CLAUSE_ORDER), or -1 and why
    nothing may be appended to it."""
    tokens = tokenize(sql)
    top = _top_level(tokens) if tokens else None
    if not tokens or top is None:
        return -1, "does not tokenize"
    if _ends_in_line_comment(sql, tokens):
        return -1, "ends in a line comment, which would swallow what is appended"
    if top[-1].token_type in (*CLAUSE_ORDER, *CONDITIONS):
        return -1, f"ends with `{top[-1].text}`: its condition would come from a fragment"
    rank = 0
    for token in top:
        if token.token_type == TokenType.SELECT:
            rank = 0
        elif token.token_type in LAST_CLAUSES:
            rank = 9
        rank = CLAUSE_ORDER.get(token.token_type, rank)
    return rank, ""


def _append(rank: int, fragment: str) -> tuple[int, str]:
    """The clause rank after appending ``fragment`` at ``rank``, or -1 and why it may not be."""
    tokens = tokenize(fragment)
    top = _top_level(tokens) if tokens else None
    if not tokens or top is None:
        return -1, "does not tokenize on its own (unbalanced parentheses or quotes)"
    if _ends_in_line_comment(fragment, tokens):
        return -1, "ends in a line comment, which would swallow what is appended after it"
    first = top[0].token_type
    if first not in CLAUSE_ORDER and first not in CONDITIONS:
        return -1, "is not a WHERE, AND, OR, GROUP BY, HAVING, ORDER BY, LIMIT or OFFSET clause"
    if top[-1].token_type in (*CLAUSE_ORDER, *CONDITIONS):
        return -1, f"ends with `{top[-1].text}`"
    for before, token in zip([None, *top], top, strict=False):
        distinct_from = before is not None and before.token_type == TokenType.DISTINCT
        if token.token_type in NOT_APPENDABLE and not distinct_from:
            return -1, f"has a top-level `{token.text}`, which could change the rows' columns"
    if first in CONDITIONS and rank not in (1, 3):
        return -1, "can follow SQL that has no WHERE or HAVING condition to continue"
    for token in top:
        new = CLAUSE_ORDER.get(token.token_type)
        if new is not None:
            if new <= rank:
                return -1, f"puts `{token.text}` after a later clause or a second `{token.text}`"
            rank = new
    return rank, ""


def grown_columns(
    base: str, fragments: Sequence[str], schema: Schema, *, always: Collection[int] = ()
) -> Columns:
    """The columns of SQL grown at run time: ``base`` plus ``fragments`` in order, each
    appended or not (those at indexes in ``always`` always are).

    The columns are ``base``'s only when every fragment is a literal WHERE / AND / OR /
    GROUP BY / HAVING / ORDER BY / LIMIT / OFFSET clause that cannot touch the select list,
    every combination puts the clauses in an order SQL accepts, and the longest and shortest
    statements parse with the same columns. Otherwise the reason names the fragment.
    """
    rank, problem = _clause_rank(base)
    if problem:
        return Columns(None, f"the SQL before the appended fragments {problem}")
    ranks, previous = {rank}, [base]
    for index, fragment in enumerate(fragments):
        if not fragment.strip():
            continue
        shown = " ".join(fragment.split())
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        after = set()
        for before in ranks:
            new, problem = _append(before, fragment)
            if problem:
                return Columns(None, f"appended `{shown}` {problem}")
            after.add(new)
        if not fragment[0].isspace() and not all(p[-1].isspace() for p in previous):
            return Columns(None, f"appended `{shown}` starts without a space")
        ranks = after if index in always else after | ranks
        previous.append(fragment)
    longest = output_columns(base + "".join(fragments), schema)
    shortest = output_columns(base + "".join(fragments[i] for i in sorted(always)), schema)
    if shortest.columns is None:
        return shortest
    if longest.columns != shortest.columns:
        return Columns(None, longest.problem or "the appended fragments change the columns")
    return shortest
