"""The README's command synopsis against the parser and the examples, and the docs' citations.

Every flag an example in README.md or docs/ uses is in the synopsis of its command; every flag of
the synopsis is one the command has, and every flag a command has is in its synopsis. The docs
cite only files of the repository: no path outside it, and every repository path they name
exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sor.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "bench").glob("*.md")),
]
COMMANDS = ("run", "backtest", "produce", "broker", "generate")
#: Flags every command takes, listed once under the synopsis rather than in each line.
COMMON = {"-h", "--help", "-v", "--verbose", "-q", "--quiet"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def synopsis() -> dict[str, set[str]]:
    """{command: flags} of the README's "## Commands" block."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Commands") :]
    block = block[block.index("```\n") + 4 :]
    block = block[: block.index("```")]
    flags: dict[str, set[str]] = {}
    command = None
    for line in block.splitlines():
        match = re.match(r"sor (\w+)\s", line)
        if match:
            command = match.group(1)
        assert command is not None, line
        flags.setdefault(command, set()).update(FLAG.findall(line))
    return flags


def parser_flags() -> dict[str, set[str]]:
    """{command: every option string} of the real parser."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {
        name: {s for action in p._actions for s in action.option_strings}
        for name, p in sub.choices.items()
    }


def examples() -> list[tuple[str, str, set[str]]]:
    """(file, command, flags) of every `sor <command> ...` in the README and the docs, a
    backslash-continued line joined to the next."""
    found = []
    for path in DOCS:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(rf"\bsor ({'|'.join(COMMANDS)})\b([^`\n]*)", text):
            found.append((path.name, match.group(1), set(FLAG.findall(match.group(2)))))
    return found


def test_the_synopsis_lists_each_command_with_its_flags():
    listed, real = synopsis(), parser_flags()
    assert set(listed) == set(COMMANDS)
    for command in COMMANDS:
        assert listed[command] == real[command] - COMMON, command


@pytest.mark.parametrize("required", ["--start", "--end", "--symbol", "--study-name", "--resume",
                                      "--num-cpus", "--topic"])  # fmt: skip
def test_flags_the_examples_rely_on_are_in_the_run_synopsis(required):
    assert required in synopsis()["run"]


def test_every_example_flag_is_in_its_commands_synopsis():
    listed = synopsis()
    used = examples()
    assert len(used) >= 10
    for name, command, flags in used:
        assert flags - COMMON <= listed[command], (name, command, flags - listed[command])


def test_the_docs_cite_no_file_outside_the_repository():
    outside = re.compile(r"\.\./|/work/|shared/data|/home/|/tmp/|~/")
    for path in DOCS:
        text = path.read_text()
        for line_no, line in enumerate(text.splitlines(), 1):
            assert not outside.search(line), f"{path.name}:{line_no}: {line.strip()}"
        # every repository path named in backticks or as a link or image exists
        named = [
            ROOT / p
            for p in re.findall(r"`((?:sor|stream|sweep|tests|docs|configs|bench)/[\w./-]+)`", text)
        ]
        named += [
            path.parent / p.split("#")[0] for p in re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", text)
        ]
        for target in named:
            assert target.exists(), f"{path.name} names {target}, which is not in the repository"


def test_the_report_screenshot_is_small():
    shot = ROOT / "docs" / "report.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size < 150_000


def test_the_readme_says_how_to_read_the_results_beside_a_screenshot():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## How to read the results\n") + 1 :]
    section = section[: section.index("\n## ")]
    assert re.search(r"!\[[^\]]+\]\(docs/report\.png\)", section)  # the screenshot, in the section
    for words in ("in sample", "out of sample", "95% interval", "clean-up", "Warnings",
                  "generated", "results_trials.csv"):  # fmt: skip
        assert words in section, words
