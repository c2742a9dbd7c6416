"""The template's own docs (README.md and docs/*.md) are true where a machine can tell.

Every relative link and `#anchor` resolves; every repository path they cite exists; the
README's first commands are the serve script and the test command that .ci/run runs;
the hook examples print what docs/hooks.md shows; the prompt transcript's labels are
those of cookiecutter.json; the file table of docs/variants.md is what the hook prunes.
And `scripts/serve-default.sh` runs for real: the default project it bakes and serves
answers, stores a user and reads it back.
"""

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from ruamel.yaml import YAML

from tests.conftest import (
    REPO_ROOT,
    STEERING_VARIABLES,
    TEMPLATE_DIR,
    import_hook,
    render_context,
    render_template_file,
)
from tests.pg_cluster import free_port

GIT = shutil.which("git") or "git"
BASH = shutil.which("bash") or "bash"
README = REPO_ROOT / "README.md"
DOC_DIR = REPO_ROOT / "docs"
DOCS = [README, *sorted(DOC_DIR.glob("*.md"))]
SERVE_SCRIPT = "scripts/serve-default.sh"
SERVE_TIMEOUT = 180  # a fresh uv cache downloads the project's locked dependencies
FENCE = re.compile(r"^```")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
# A backticked token that reads as a path: no spaces or placeholders, and a folder or
# a file extension in it.
PATH_TOKEN = re.compile(r"[\w.{}-][\w./{}-]*")
PATH_SUFFIXES = (".py", ".md", ".json", ".yml", ".yaml", ".toml", ".txt", ".lock", ".sh")


# ---------------------------------------------------------------------------
# Reading Markdown


def _blocks_and_prose(text: str) -> tuple[list[list[str]], list[str]]:
    """The fenced code blocks (their lines, the fence's line first) and the lines outside them."""
    blocks: list[list[str]] = []
    prose: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = [line]
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
        else:
            prose.append(line)
    assert current is None, "a code fence is never closed"
    return blocks, prose


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _blocks_and_prose(path.read_text(encoding="utf-8"))[1]:
        match = HEADING.match(line)
        if match is None:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _prose(path: Path) -> list[str]:
    return _blocks_and_prose(path.read_text(encoding="utf-8"))[1]


def _name(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


# ---------------------------------------------------------------------------
# Links and paths


def test_the_docs_exist() -> None:
    names = [_name(path) for path in DOCS]
    assert "docs/testing.md" in names, names
    assert "## Mutation check" in (DOC_DIR / "testing.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for line in _prose(doc):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            path, _, anchor = target.partition("#")
            linked = (doc.parent / unquote(path)).resolve() if path else doc
            if not linked.exists() or not linked.is_relative_to(REPO_ROOT):
                broken.append(f"{target}: no such file")
            elif anchor and (linked.suffix != ".md" or anchor not in _anchors(linked)):
                broken.append(f"{target}: no heading #{anchor} in {_name(linked)}")
    assert broken == [], f"{_name(doc)}:\n" + "\n".join(broken)


def _repository_files() -> list[str]:
    """What a clone holds: tracked files, and new ones not ignored."""
    listed = subprocess.run(
        [GIT, "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def _cited_paths(doc: Path) -> list[str]:
    tokens = [token for line in _prose(doc) for token in CODE_SPAN.findall(line)]
    if doc == README:  # the layout block: the first column names what is here
        blocks = _blocks_and_prose(doc.read_text(encoding="utf-8"))[0]
        layout = next(b for b in blocks if any(line.startswith("cookiecutter.json ") for line in b))
        tokens += [line.split()[0] for line in layout[1:] if line.strip()]
    return [
        token
        for token in tokens
        if PATH_TOKEN.fullmatch(token) and ("/" in token or token.endswith(PATH_SUFFIXES))
    ]


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_cited_paths_exist(doc: Path) -> None:
    """A path whose first part is a top-level name of this repository or of the project
    template must exist in one of them (the docs cite both: `tests/test_bake.py`, and a
    bake's `app/db/engine.py`)."""
    files = _repository_files()
    tops = {name.split("/")[0] for name in files} | {p.name for p in TEMPLATE_DIR.iterdir()}
    cited = [path for path in _cited_paths(doc) if path.rstrip("/").split("/")[0] in tops]
    assert cited, f"{_name(doc)} cites no path: is the pattern still right?"
    missing = [
        path
        for path in cited
        if not (REPO_ROOT / path).exists() and not (TEMPLATE_DIR / path).exists()
    ]
    assert missing == [], f"{_name(doc)} cites paths that do not exist: {missing}"


# ---------------------------------------------------------------------------
# The README's two commands


def _commands(lines: list[str]) -> list[list[str]]:
    return [words for line in lines if (words := shlex.split(line, comments=True))]


def _ci_test_command() -> list[str]:
    """The command of .ci/run's "tests" stage."""
    text = (REPO_ROOT / ".ci/run").read_text(encoding="utf-8")
    stage = text.split('\nstage "tests"\n', 1)[1].split("\nstage ", 1)[0]
    [command] = _commands(stage.splitlines())
    return command


def test_the_readme_starts_with_the_serve_and_the_test_command() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    content = [line for line in lines[1:] if line.strip()]
    assert content[0] == "```sh", "the README's first lines are its two commands"
    block = content[1 : content.index("```")]
    serve, test = _commands(block)
    assert serve == ["bash", SERVE_SCRIPT]
    assert os.access(REPO_ROOT / SERVE_SCRIPT, os.X_OK)
    assert test == _ci_test_command()
    assert (REPO_ROOT / test[-1]).is_file()
    # The template's workflow runs it too.
    workflow = YAML(typ="safe", pure=True).load(
        (REPO_ROOT / ".github/workflows/template-ci.yml").read_text(encoding="utf-8")
    )
    runs = [step.get("run", "") for step in workflow["jobs"]["matrix"]["steps"]]
    assert shlex.join(test) in runs


# ---------------------------------------------------------------------------
# Examples that show code or output


def _examples(doc: Path) -> list[list[str]]:
    """The code blocks of `doc` that start with a `$ ` command line."""
    blocks = _blocks_and_prose(doc.read_text(encoding="utf-8"))[0]
    return [block[1:] for block in blocks if len(block) > 1 and block[1].startswith("$ ")]


HOOK_EXAMPLES = _examples(DOC_DIR / "hooks.md")


@pytest.mark.parametrize("example", HOOK_EXAMPLES, ids=lambda example: example[0][:60])
def test_the_hook_examples_print_what_the_docs_show(
    example: list[str], tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    """Each `$ cookiecutter . ...` of docs/hooks.md, run from this clone into a temporary
    folder: its stdout (its stderr when the bake fails) is the block's other lines, with
    `python` for the hooks' interpreter and /home/ada/ for the output folder."""
    words = shlex.split(example[0].removeprefix("$ "))
    env = {}
    while re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VARIABLE=value before the command
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[:2] == ["cookiecutter", "."], example[0]
    out = tmp_path / "out"
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n", encoding="utf-8")
    argv = [sys.executable, "-m", "cookiecutter", str(REPO_ROOT), *words[2:], "-o", str(out)]
    result = subprocess.run(
        argv,
        cwd=tmp_path,
        env={**os.environ, "COOKIECUTTER_CONFIG": str(config), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    printed = result.stdout if result.returncode == 0 else result.stderr
    printed = printed.replace(shlex.quote(sys.executable), "python").replace(
        f"{out}/", "/home/ada/"
    )
    assert [line.rstrip() for line in printed.rstrip().splitlines()] == example[1:]


def test_the_prompt_transcript_has_the_labels_of_cookiecutter_json() -> None:
    [transcript] = _examples(README)
    config = json.loads((REPO_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    prompts = config["__prompts__"]
    asked = [name for name in config if not name.startswith("_")]
    seen: list[tuple[str, list[str]]] = []  # each prompt's line, and its choices
    for line in transcript[1:]:
        prompt = re.match(r"  \[(\d+)/(\d+)\] (.*)", line)
        choice = re.match(r"    \d+ - (.*)", line)
        if prompt:
            assert (int(prompt.group(1)), int(prompt.group(2))) == (len(seen) + 1, len(asked))
            seen.append((prompt.group(3), []))
        elif choice:
            seen[-1][1].append(choice.group(1))
        elif line.startswith("    Choose from"):  # the end of a choice prompt
            if len(seen) == len(asked):
                break  # then the hook's output
        elif seen and seen[-1][1]:  # the terminal wrapped a long choice
            seen[-1][1][-1] += " " + line
    assert len(seen) == len(asked)
    for name, (line, choices) in zip(asked, seen, strict=True):
        default = config[name]
        if isinstance(default, list):
            label = prompts[name] if isinstance(prompts[name], str) else prompts[name]["__prompt__"]
            labels = (
                default if isinstance(prompts[name], str) else [prompts[name][c] for c in default]
            )
            assert (line, choices) == (label, labels)
        elif "{{" in default:  # derived: the transcript shows what it rendered to
            assert line.startswith(f"{prompts[name]} ("), line
        else:
            assert line.startswith(f"{prompts[name]} ({default}):"), line


def test_the_recorded_answers_example_is_what_a_bake_records(tmp_path: Path) -> None:
    blocks = _blocks_and_prose((DOC_DIR / "variants.md").read_text(encoding="utf-8"))[0]
    [block] = [b for b in blocks if b[0] == "```toml"]
    shown = tomllib.loads("\n".join(block[1:]))["tool"]["template-answers"]
    answers = {key: value for key, value in shown.items() if key != "template_version"}
    pyproject = render_template_file("pyproject.toml", tmp_path, render_context(**answers))
    recorded = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["template-answers"]
    assert recorded == shown


Condition = list[dict[str, set[str]]]


def _file_table() -> list[tuple[Condition, list[str]]]:
    """docs/variants.md's "Files each answer adds": (condition, paths) per row, the
    condition as alternatives (a row's " or "), each {answer: the values that keep the
    paths} (a row's terms separated by commas, all of which must hold)."""
    text = (DOC_DIR / "variants.md").read_text(encoding="utf-8")
    section = text.split("## Files each answer adds\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        alternatives = []
        for clause in cells[0].split(" or "):
            condition = {}
            for term in CODE_SPAN.findall(clause):
                name, _, values = term.partition("=")
                condition[name] = set(values.split("/"))
            alternatives.append(condition)
        rows.append((alternatives, CODE_SPAN.findall(cells[1])))
    return rows


def test_the_file_table_is_what_the_hook_prunes(tmp_path: Path) -> None:
    """For every combination of the answers that decide files, a path of the table is
    in the bake exactly when its row's condition holds; and the table names every path
    the hook can remove."""
    config = json.loads((REPO_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    table = _file_table()
    assert table, "no table under '## Files each answer adds'"
    names = ("database", "include_example_models", "auth", "task_queue", "use_docker", "ci")
    removable: set[str] = set()
    wrong = []
    for values in itertools.product(*(config[name] for name in names)):
        answers = dict(zip(names, values, strict=True))
        hook = import_hook("post_gen_project", tmp_path, render_context(**answers))
        unwanted: list[str] = hook.unwanted_paths()
        removable.update(unwanted)
        for alternatives, paths in table:
            holds = any(
                all(answers[name] in allowed for name, allowed in condition.items())
                for condition in alternatives
            )
            for path in paths:
                present = not any(path == u or path.startswith(f"{u}/") for u in unwanted)
                if present != holds:
                    wrong.append(f"{path} with {answers}: present={present}")
    assert wrong == [], "\n".join(wrong[:10])
    assert removable <= {path for _, paths in table for path in paths}


# ---------------------------------------------------------------------------
# scripts/serve-default.sh, for real


def test_serve_default_bakes_and_serves_the_default_project(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    """What a fresh machine runs, except that the tooling environment is this session's
    (TEMPLATE_VENV): the bake, its first migration, the project's own .venv from its
    uv.lock, and uvicorn on the port in PORT."""
    port = free_port()
    out = tmp_path / "out"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PORT": str(port), "TEMPLATE_VENV": sys.prefix}
    for name in STEERING_VARIABLES:
        env.pop(name, None)
    with log.open("w", encoding="utf-8") as sink:
        server = subprocess.Popen(
            [BASH, str(REPO_ROOT / SERVE_SCRIPT), str(out)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            try:
                if httpx.get(f"{base_url}/livez", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, f"the script stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, (
                f"no /livez in {SERVE_TIMEOUT} s:\n{log.read_text()}"
            )
            time.sleep(0.5)
        user = {"email": "ada@example.com", "full_name": "Ada Lovelace"}
        created = httpx.post(f"{base_url}/api/v1/users", json=user, timeout=10)
        assert created.status_code == 201, created.text
        read = httpx.get(f"{base_url}/api/v1/users/{created.json()['id']}", timeout=10)
        assert read.status_code == 200, read.text
        assert {key: read.json()[key] for key in user} == user
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    printed = log.read_text(encoding="utf-8")
    project = out / "my-service"
    assert "The database is at the latest migration." in printed, printed
    assert (project / ".venv/bin/python").is_file()
    # uvicorn re-raises SIGTERM after a clean shutdown: -15 is the normal exit.
    assert server.returncode in (0, -signal.SIGTERM), printed
    assert "Application shutdown complete" in printed, printed
