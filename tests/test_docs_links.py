"""Every reference in the docs resolves inside the repository.

* Each relative markdown link in README.md and docs/ (contracts included) points
  at a file or directory that exists, and a ``#fragment`` into a markdown file
  names one of its headings (GitHub's anchor rules).
* No doc, docstring or comment sends the reader to a document the repository
  does not hold: the shared folder the project was specified in, an issue
  tracker, or a bare "design §N" that names no file (write ``docs/design.md §N``,
  or link to it).
"""

import re
from pathlib import Path

from django.conf import settings

BASE = Path(settings.BASE_DIR)

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(
    r"""!?\[ (?:[^\[\]] | \[[^\]]*\])* \]   # [text], one level of [] inside
        \( \s* <?([^)\s>]+)>?                # (target
        (?:\s+"[^"]*")? \s* \)               #  "title")""",
    re.VERBOSE,
)
REFERENCE_LINK = re.compile(
    r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE
)
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def markdown_files() -> list[Path]:
    return [BASE / "README.md", *sorted((BASE / "docs").rglob("*.md"))]


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans (links there are code)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped
    (hyphens and underscores kept), each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = github_anchor(heading)
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def broken_links(path: Path, base: Path = BASE) -> list[str]:
    """The relative links of ``path`` that resolve to nothing, as "target: why"."""
    prose = _prose(path.read_text())
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    broken = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto:, ...: not in the repository
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
            continue
        if not resolved.is_relative_to(base.resolve()):
            broken.append(f"{target}: outside the repository")
            continue
        if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return broken


def test_every_relative_markdown_link_resolves():
    files = markdown_files()
    assert BASE / "docs" / "design.md" in files
    assert len(files) >= 15
    broken = {
        str(path.relative_to(BASE)): found
        for path in files
        if (found := broken_links(path))
    }
    assert broken == {}


def test_the_link_check_catches_what_it_should(tmp_path):
    repo = tmp_path / "repo"
    doc = repo / "docs" / "guide.md"
    doc.parent.mkdir(parents=True)
    (repo / "README.md").write_text("# Top\n\n## Two ways to run, one code path\n")
    (tmp_path / "elsewhere.md").touch()
    doc.write_text(
        "# Guide — `make run`\n\n"
        "[ok](../README.md) [ok anchor](../README.md#two-ways-to-run-one-code-path)\n"
        "[self](#guide--make-run) [web](https://example.com/x.md)\n"
        "[gone](missing.md) [bad anchor](../README.md#nope)\n"
        "[out](../../elsewhere.md)\n"
        "[ref]: ../nothing/here.md\n"
        "```\n[in code](not-checked.md)\n```\n"
        "`[span](not-checked-either.md)`\n"
    )
    assert broken_links(doc, repo) == [
        "missing.md: no such file",
        "../README.md#nope: no heading #nope in README.md",
        "../../elsewhere.md: outside the repository",
        "../nothing/here.md: no such file",
    ]


def test_github_anchor_of_headings_as_written_here():
    assert github_anchor("Benchmark — `python -m bench.lines`") == (
        "benchmark--python--m-benchlines"
    )
    assert github_anchor("3. Layout (from the project's design card)") == (
        "3-layout-from-the-projects-design-card"
    )


# --- references to documents the repository does not hold ---------------------------

OUTSIDE = [
    (re.compile(r"/work/|\bshared/|(?<![\w/])spec/"), "a path outside the repository"),
    (re.compile(r"\bissues? #?\d+\b", re.IGNORECASE), "an issue-tracker reference"),
    (
        re.compile(r"(?<!design\.md )(?<!\[)\bdesign §\d"),
        "'design §N' without docs/design.md",
    ),
]


def _sources() -> list[Path]:
    skip = {".venv", "var", ".git", "node_modules", "contracts"}
    found = [
        path
        for pattern in ("*.py", "*.md", "*.toml", "*.txt", "Makefile", "Procfile")
        for path in BASE.rglob(pattern)
        if not skip & set(path.relative_to(BASE).parts)
    ]
    found += [BASE / ".ci" / "run", BASE / ".env.example"]
    return sorted(set(found) - {Path(__file__)})


def outside_references(path: Path, base: Path = BASE) -> list[str]:
    hits = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for pattern, what in OUTSIDE:
            if pattern.search(line):
                where = f"{path.relative_to(base)}:{number}"
                hits.append(f"{where}: {what}: {line.strip()}")
    return hits


def test_nothing_points_at_a_document_outside_the_repository():
    sources = _sources()
    assert BASE / "bpmos" / "settings.py" in sources
    assert [hit for path in sources for hit in outside_references(path)] == []


def test_the_outside_reference_check_has_teeth(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Two run modes (design §2); see /work/shared/performance.md."""\n'
        "# spec/trackopz-dispatch-lifecycle.md, issue 6\n"
        "# fine: docs/design.md §2, [design §5](docs/design.md#5-roles)\n"
    )
    assert [hit.split(": ")[1] for hit in outside_references(sample, tmp_path)] == [
        "a path outside the repository",
        "'design §N' without docs/design.md",
        "a path outside the repository",
        "an issue-tracker reference",
    ]
