"""Rule texts for people: ``claun-migrate rule CODE`` and the generated docs/rules/ pages.

``python -m claun_migrate.report.rules docs/rules`` rewrites the pages from the registry in
``codemods/rules.py``; a test fails when they are out of sync.
"""

from __future__ import annotations

import sys
from pathlib import Path

from claun_migrate.codemods.rules import RULES, Rule

HEADER = (
    "<!-- generated from codemods/rules.py by "
    "`python -m claun_migrate.report.rules docs/rules`; do not edit -->\n"
)


def markdown(rule: Rule) -> str:
    """One rule as a Markdown page, in the order of ruff's rule pages."""
    safety = "applied by default" if rule.safety == "safe" else "never edited: left for a person"
    return (
        f"# {rule.code} {rule.name}\n\n"
        f"{rule.title}.\n\n"
        f"Reported by `{rule.codemod}`. Fix safety: {rule.safety} ({safety}).\n\n"
        f"## Why\n\n{rule.why}\n\n"
        f"## Example\n\n```python\n{rule.example}\n```\n\n"
        f"## Fix\n\n{rule.fix}\n\n"
        f"## Keep it on purpose\n\n"
        f"Add `# noqa: {rule.code}` (or `# claun-migrate: ignore[{rule.code}]`) at the end of the "
        f'reported line, or `ignore = ["{rule.code}"]` (or `per-file-ignores`) under '
        "`[tool.claun-migrate]` in pyproject.toml.\n"
    )


def index() -> str:
    """The table of every rule, linking each page."""
    rows = [
        f"| [{r.code}]({r.code}.md) | {r.name} | {r.codemod} | {r.title} |" for r in RULES.values()
    ]
    return (
        "# Rules\n\n"
        "Every code claun-migrate reports; `claun-migrate rule CODE` prints the same text.\n\n"
        "| code | name | codemod | what it flags |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def pages() -> dict[str, str]:
    """File name -> text of every page docs/rules/ must hold."""
    out = {f"{code}.md": HEADER + markdown(rule) for code, rule in RULES.items()}
    out["README.md"] = HEADER + index()
    return out


def write(folder: Path) -> None:
    """Make ``folder`` hold exactly the generated pages."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = pages()
    for stale in folder.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules"))
