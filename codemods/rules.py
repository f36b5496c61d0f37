"""Every rule code a run can report, as data: ``claun-migrate rule``, docs/rules/ and SARIF read it.

A rule is a site the codemods leave for a person. ``safety`` is ``"review"`` when the site is
never edited by default; ``"safe"`` would mark one whose suggested edit is always applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Rule:
    """One code: what it flags, why it matters, an example and the fix."""

    code: str
    name: str
    codemod: str
    title: str
    why: str
    example: str
    fix: str
    safety: str = "review"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


_RULES = (
    Rule(
        "CM101",
        "sql-not-literal",
        "named-rows",
        "The SQL of a query whose rows are read by position is built at run time",
        'The columns of the rows come from the SQL; built at run time (`query += " AND ..."`, '
        "f-strings, `%`), it cannot be read, so `row[1]` cannot be proven to be a given column.",
        'query = "SELECT id, name FROM users"\nif active:\n    query += " AND active = 1"\n'
        "rows = execute_sql(query, fetch=True)\nprint(rows[0][1])",
        "If what is added keeps the columns, use the name from the first literal "
        '(`rows[0]["name"]`); the finding suggests it.',
    ),
    Rule(
        "CM102",
        "unnamed-column",
        "named-rows",
        "A column read by position has no name both drivers report",
        "`COUNT(*)`, `lower(x)` and literals without an alias get driver-specific names, and "
        "PostgreSQL folds unquoted mixed-case names to lower case while SQLite does not: "
        '`row["..."]` would work on one database only.',
        'rows = execute_sql("SELECT COUNT(*) FROM jobs", fetch=True)\ntotal = rows[0][0]',
        'Add an alias in the SQL (`COUNT(*) AS count`), then read `rows[0]["count"]`.',
    ),
    Rule(
        "CM103",
        "duplicate-column",
        "named-rows",
        "Two columns of the query share the name read by position",
        "`SELECT j.id, c.id` gives two columns named `id`; the shipped row type refuses "
        '`row["id"]` for them (KeyError) rather than pick one silently.',
        'rows = execute_sql("SELECT j.id, c.id FROM jobs j JOIN companies c ON ...", fetch=True)\n'
        "company_id = rows[0][1]",
        "Alias them apart (`c.id AS company_id`), then read the alias.",
    ),
    Rule(
        "CM104",
        "row-escapes",
        "named-rows",
        "A function's parameter does not get rows of one proven query from every caller",
        "A parameter's rows are proven when every caller in the run passes rows of the same "
        "columns and every reference to the function is a call the analysis follows. Rows of "
        "different queries, other values (a test passing a tuple) or a function passed as a "
        "value leave its positional reads unproven.",
        'def serialise(row):\n    return {"id": row[0]}\n\n\n'
        'serialise(execute_sql("SELECT id FROM jobs", fetch=True)[0])\n'
        'serialise(execute_sql("SELECT title, id FROM jobs", fetch=True)[0])',
        "Read it by name inside the function, or give each query its own function; the "
        "finding names the callers.",
    ),
    Rule(
        "CM105",
        "json-shape",
        "named-rows",
        "Raw rows are serialised to JSON",
        "Rows given to `jsonify(...)`/`json.dumps(...)` or put in a returned dict or list are "
        "JSON arrays today; turning them into dicts would make them objects and change the API. "
        "The shipped row type keeps the arrays, so keeping the site is a valid decision: "
        "suppress it with `# noqa: CM105` or the configuration.",
        'profile = execute_sql("SELECT u.email, p.* FROM users u JOIN ...", fetch=True)\n'
        'return jsonify({"profile": profile[0]})',
        "`dict(row)` / `[dict(r) for r in rows]` if objects are wanted (an API change); "
        "otherwise keep it and suppress the finding.",
    ),
    Rule(
        "CM106",
        "arity-mismatch",
        "named-rows",
        "Unpacking whose length differs from the select list",
        "`a, b = row` over a query of three columns raises ValueError at run time: the code and "
        "the SQL disagree.",
        'user = execute_sql("SELECT id, email, name FROM users", fetch=True)[0]\n'
        "user_id, email = user",
        "Unpack exactly the query's columns (the finding lists them), or fix the SQL.",
    ),
    Rule(
        "CM107",
        "index-out-of-range",
        "named-rows",
        "The index is past the select list",
        "`row[3]` over a query of three columns raises IndexError today; no name can replace it.",
        'row = execute_sql("SELECT id, email, name FROM users", fetch=True)[0]\nrole = row[3]',
        "Check the SQL and the index.",
    ),
    Rule(
        "CM108",
        "unknown-columns",
        "named-rows",
        "The select list of the query is unknown",
        "`*` over a table no `CREATE TABLE` of the project declares, `USING`/`NATURAL` joins "
        "under `*`, SQL sqlglot cannot parse, a statement without rows, `fetch` not a literal, "
        "or a result list that gets items appended: the position cannot be named.",
        'rows = execute_sql("SELECT * FROM legacy_table", fetch=True)\nfirst = rows[0][0]',
        "Name the columns in the SQL (or give the schema with `--schema`), or name the site by "
        "hand.",
    ),
    Rule(
        "CM109",
        "ambiguous-binding",
        "named-rows",
        "The name is bound more than once and the reaching binding is unclear",
        "Bound in several branches, or rebound later in a loop, the variable may hold rows of "
        "different queries at the read.",
        "if admin:\n    rows = execute_sql(SQL_A, fetch=True)\nelse:\n"
        "    rows = execute_sql(SQL_B, fetch=True)\nprint(rows[0][1])",
        "Name the site by hand, or give each query its own variable.",
    ),
    Rule(
        "CM110",
        "cursor-row",
        "named-rows",
        "A row is fetched from a cursor whose query is not followed",
        "A fetch returns rows of the `execute` calls on that cursor that reach it. When none is "
        "found (the cursor comes from elsewhere), or different ones run on different paths, "
        "the columns are not proven.",
        'cur.execute("SELECT id FROM users")\nif admin:\n    cur.execute("SELECT name FROM '
        'users")\nfirst = cur.fetchone()[0]',
        "Run one query per cursor on every path to the fetch, or name the column by hand.",
    ),
    Rule(
        "CM111",
        "plain-rows",
        "named-rows",
        "A site that would be named while its rows may still be plain tuples",
        '`row["id"]` raises TypeError on a tuple. Sites are rewritten only when the connection '
        "their rows come from hands out rows that answer names once the run is done: migrated "
        "by pool-connections in the same run or already, or a dict cursor. A connection the "
        "run does not migrate, or one passed in from code the analysis does not follow, keeps "
        "plain tuples; under libcst's runner an `execute_sql` outside the run counts as plain "
        "unless `--data-layer` names a migrated one.",
        "# claun-migrate check app/routes  (the data layer is not part of the run)\n"
        'rows = execute_sql("SELECT id, name FROM users", fetch=True)\nname = rows[0][1]',
        "Run claun-migrate on the backend root, so the data layer is migrated in the same run; "
        'the finding gives the `row["name"]` it would write.',
    ),
    Rule(
        "CM112",
        "dict-row-position",
        "named-rows",
        "A row that only answers names is read or unpacked by position",
        "`RealDictCursor` rows and `dict(row)` are dicts: `row[0]` raises KeyError and "
        "`a, b = row` gives the column names. When the column is proven the read is rewritten "
        "to its name (a fix); otherwise it is reported.",
        "cur = conn.cursor(cursor_factory=RealDictCursor)\ncur.execute(sql)\n"
        "user_id = cur.fetchone()[0]",
        'Read it by name (`row["id"]`).',
    ),
    Rule(
        "POOL001",
        "connection-not-given-back",
        "pool-connections",
        "A site opens a connection that cannot be given back on every path",
        "Pooled, a connection must go back to the pool where the legacy code closed it. When "
        "it is handed out without a `finally` that closes it, returned along with other "
        "values, used after it is closed, or bound to another connection in the same "
        "function, no edit can give it back on every path, so its source is not migrated "
        "either (POOL002) and `check` keeps failing: connect-per-call is still there.",
        "def get_user(user_id):\n    conn = get_db_connection()\n"
        "    return conn, conn.cursor()  # the caller must close it",
        "Open and release it in one function: `conn = get_conn()` then `try: ... finally: "
        "conn.close()`, or `with closing(get_conn()) as conn:`; then run again.",
    ),
    Rule(
        "POOL002",
        "connect-per-call-left",
        "pool-connections",
        "A function still opens a new connection per call: not migrated",
        "A connection source (a function returning `psycopg2.connect(...)` or "
        "`sqlite3.connect(...)`) is migrated only when every site that uses it can give the "
        "connection back; one that cannot (reported as POOL001) keeps the whole source "
        "connect-per-call, and `check` fails while it is left.",
        "def get_db_connection():\n    return psycopg2.connect(DATABASE_URL)\n\n\n"
        "def export():\n    conn = get_db_connection()\n    return conn  # POOL001",
        "Fix the sites reported as POOL001 (or give the connection back by hand), then run again.",
    ),
    Rule(
        "POOL003",
        "simple-connection-pool",
        "pool-connections",
        "psycopg2's SimpleConnectionPool is used",
        "`SimpleConnectionPool` is not thread-safe: under a threaded server two threads can "
        "get one connection, and it overshoots `maxconn`. A hand-made pool is kept as it is.",
        "pool = psycopg2.pool.SimpleConnectionPool(1, 10, DATABASE_URL)",
        "Use the shipped pool (replace the hand-made pool with `psycopg2.connect` and run "
        "claun-migrate) or `psycopg2.pool.ThreadedConnectionPool`.",
    ),
    Rule(
        "POOL004",
        "sql-built-from-values",
        "pool-connections",
        "SQL handed to the database is built from strings with non-literal parts",
        "An f-string, `%` formatting, `+` or `.format()` that puts a value into the SQL text "
        "lets a value change the statement (SQL injection, ruff's S608); the driver quotes "
        "values only when they are passed as parameters. claun-migrate never moves a parameter "
        "into the SQL text, and never moves one out either: that is a person's edit.",
        "execute_sql(f\"SELECT id FROM users WHERE email = '{email}'\", fetch=True)",
        "Pass the value as a parameter: "
        '`execute_sql("SELECT id FROM users WHERE email = %s", (email,), fetch=True)`; '
        "table or column names chosen at run time must come from a fixed list.",
    ),
    Rule(
        "GEN001",
        "runtime-copy-edited",
        "pool-connections",
        "A runtime copy generated by claun-migrate was edited by hand",
        "Its checksum no longer matches, so an upgrade would lose the edits; it is left as it "
        "is. A file of this run that needs the new version is not migrated (an error).",
        "# app/services/db_pool.py, generated, then edited by hand",
        "Compare it with the new version, then delete it and run again.",
    ),
    Rule(
        "GEN002",
        "runtime-name-taken",
        "pool-connections",
        "A file with a runtime copy's name exists and was not generated by claun-migrate",
        "Writing the copy would overwrite code that is not ours; it is left as it is. A file of "
        "this run that needs the copy is not migrated (an error).",
        "# app/services/db_pool.py already exists, written by the team",
        "Rename that file (the migrated code imports ours under that name), then run again.",
    ),
    Rule(
        "REQ001",
        "no-requirements-file",
        "pool-connections",
        "The migrated code needs a distribution and no requirements.txt was found",
        "The runtime copies import `psycopg2` (and `flask` for SQLite per request); the nearest "
        "`requirements.txt` upward (stopping at `.git`, `pyproject.toml` or `setup.py`) gets "
        "them added, and here there is none.",
        "# backend/ without requirements.txt",
        "Add the named distribution to your requirements (pyproject.toml, requirements.in...).",
    ),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _RULES}
