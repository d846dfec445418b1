"""The README and docs/ stay true: their links and anchors resolve, every docs page is in the index,
the fresh-machine commands are the ones CI runs, the Python examples parse and are formatted, and
every `saescope` command line and training YAML they show is accepted by today's CLI and schema."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from saescope.cli import build_parser
from saescope.train.config import TrainConfig
from tests.paths import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEREDOC = re.compile(r"cat > (\S+) <<'(\w+)'\n(.*?)^\2$", re.M | re.S)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def blocks(page: Path, language: str) -> list[str]:
    """The fenced code blocks of one language, de-indented (blocks inside list items are indented)."""
    found = []
    for indent, lang, body in FENCE.findall(page.read_text()):
        if lang == language:
            found.append("\n".join(line.removeprefix(indent) for line in body.splitlines()) + "\n")
    return found


def prose(page: Path) -> str:
    """The page without its code blocks and inline code, where links are not links."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()  # a link: its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    for line in FENCE.sub("", page.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
    return {base if i == 0 else f"{base}-{i}" for base, n in seen.items() for i in range(n)}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_link_and_anchor_resolves(page: Path):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {page_id(linked)}")
    assert not broken, f"{page_id(page)}: broken links: {broken}"


def test_every_docs_page_is_in_the_index():
    index = {
        (REPO / "docs" / t.partition("#")[0]).resolve()
        for t in LINK.findall(prose(REPO / "docs" / "README.md"))
    }
    pages = [
        p
        for p in (REPO / "docs").glob("*.md")
        if p.name != "README.md" and not p.name.startswith("_")
    ]
    assert pages, "docs/ has no pages"
    missing = [p.name for p in pages if p.resolve() not in index]
    assert not missing, f"docs/README.md does not link {missing}"


def test_the_fresh_machine_commands_are_what_make_and_ci_run():
    """The README's two commands for a fresh machine: the demo on built-in defaults, and the tests,
    which is the command .ci/run runs."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### A fresh machine", 1)[1]
    commands = [line.split("#")[0].strip() for line in FENCE.search(section).group(3).splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text().splitlines()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo: setup\n\t\.venv/bin/saescope demo\n", makefile, re.M)
    assert re.search(r"^test: setup\n\t\.venv/bin/python -m pytest -q\n", makefile, re.M)


PYTHON_BLOCKS = [(page, code) for page in PAGES for code in blocks(page, "python")]


@pytest.mark.parametrize(
    ("page", "code"), PYTHON_BLOCKS, ids=lambda v: page_id(v) if isinstance(v, Path) else ""
)
def test_python_examples_parse_and_are_formatted(page: Path, code: str):
    ast.parse(code, filename=page_id(page))
    check = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--diff", "--stdin-filename", "example.py", "-"],
        input=code,
        capture_output=True,
        text=True,
        cwd=REPO,  # pyproject.toml's line length
    )
    assert check.returncode == 0, (
        f"{page_id(page)}: run ruff format on this example:\n{check.stdout}"
    )


def command_lines(script: str) -> list[list[str]]:
    """The shell lines of a block that run `saescope`, continuations joined, here-documents left out."""
    script = HEREDOC.sub("", script).replace("\\\n", " ")
    found = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word.endswith("saescope") and (i == 0 or words[i - 1] in ("-m", "&&", ";")):
                found.append(words[i + 1 :])
                break
    return found


TRAIN_YAMLS = [
    (page, name, body)
    for page in PAGES
    for script in blocks(page, "bash")
    for name, _, body in HEREDOC.findall(script)
    if name.endswith(".yaml")
]


def load_train_yaml(name: str, body: str, overrides: list[str], folder: Path) -> TrainConfig:
    config = folder / name
    config.write_text(body)
    return TrainConfig.from_yaml(str(config), overrides)


@pytest.mark.parametrize(
    ("page", "name", "body"), TRAIN_YAMLS, ids=lambda v: page_id(v) if isinstance(v, Path) else ""
)
def test_every_training_yaml_shown_is_a_valid_config(
    page: Path, name: str, body: str, tmp_path: Path
):
    load_train_yaml(name, body, [], tmp_path)


SAESCOPE_LINES = [
    (page, argv)
    for page in PAGES
    for script in blocks(page, "bash")
    for argv in command_lines(script)
    if "--help" not in argv and not any(a.startswith("[") for a in argv)  # a usage synopsis
]


@pytest.mark.parametrize(
    ("page", "argv"),
    SAESCOPE_LINES,
    ids=lambda v: page_id(v) if isinstance(v, Path) else " ".join(v),
)
def test_every_saescope_command_shown_is_accepted(page: Path, argv: list[str], tmp_path: Path):
    shown = f"{page_id(page)}: `saescope {shlex.join(argv)}`"
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{shown} is refused (exit {stop.code})")
    assert getattr(args, "func", None), f"{shown} runs nothing"
    if args.command == "train" and args.overrides:
        # the overrides name real fields with accepted values: apply them to the README's config
        readme_yamls = [(n, b) for where, n, b in TRAIN_YAMLS if where == REPO / "README.md"]
        assert readme_yamls, "the README shows no training YAML to apply overrides to"
        name, body = readme_yamls[0]
        load_train_yaml(name, body, args.overrides, tmp_path)
