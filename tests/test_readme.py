"""The README and docs/*.md run as written: every command in their code blocks is checked against the code.

Blocks are discovered, not listed here, so a new section is checked as soon as it is written:

* every ```bash block: each command's program must exist, and its subcommand and every flag it
  uses must be accepted by the real parser (``msport`` commands are parsed by msport's own
  argparse parser; scripts by the flags their ``--help`` lists), so no command can drift from
  the code. A program this test does not know fails, naming the command: teach it here.
* a ```bash block right after ``<!-- readme-test: run -->`` is also run, command by command, as
  a user would after ``source .venv/bin/activate``; each must exit 0. Mark only cheap blocks.
* every ```python block must compile.
* every column header of the diagnosis tables is explained in the README.
"""

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The pages a user reads: the README, then every page of docs/ (found, not listed).
PAGES = {path.relative_to(REPO).as_posix(): path.read_text()
         for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
README = PAGES["README.md"]
RUN_MARK = "<!-- readme-test: run -->"
FENCE = re.compile(r"(?P<mark><!-- readme-test: run -->\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)\n```", re.S)


def _blocks(lang, page=None):
    """``(body, marked to run, "page:line")`` of every ``lang`` block, in every page (or one)."""
    return [(m.group("body"), bool(m.group("mark")), f"{name}:{text.count(chr(10), 0, m.start()) + 1}")
            for name, text in PAGES.items() if page in (None, name)
            for m in FENCE.finditer(text) if m.group("lang") == lang]


def _commands(body):
    """Each command of a bash block: comments dropped, continuations joined, ``&&`` chains split."""
    text = body.replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        command = []
        for word in words + ["&&"]:
            if word == "&&":
                if command:
                    yield command
                command = []
            else:
                command.append(word)


def _shell_commands(run_only=False):
    found = []
    for body, marked, line in _blocks("bash"):
        if run_only and not marked:
            continue
        found += [pytest.param(command, id=f"{line}:{' '.join(command)[:60]}") for command in _commands(body)]
    return found


# ---- what a command is -------------------------------------------------------------------------

def _strip_environment(command):
    while command and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", command[0]):
        command = command[1:]
    return command


def _is_python(word):
    return os.path.basename(word) in ("python", "python3")


def _split(command):
    """``(kind, target, args)``: kind is msport, script, module, make, source, diff or None."""
    command = _strip_environment(command)
    if not command:  # a shell variable set for the lines below (E=examples.transformer_classifier)
        return "external", None, []
    program, args = command[0], command[1:]
    if os.path.basename(program) == "msport":
        return "msport", None, args
    if _is_python(program) and args[:2] == ["-m", "msport"]:
        return "msport", None, args[2:]
    if _is_python(program) and args[:1] == ["-m"]:
        return "module", args[1], args[2:]
    if _is_python(program) and args and args[0].endswith(".py"):
        return "script", args[0], args[1:]
    if os.path.basename(program) in LAUNCHERS:  # msrun/torchrun ... script.py args: check the script and its args
        scripts = [i for i, a in enumerate(args) if a.endswith(".py")]
        if scripts:
            return "script", args[scripts[0]], args[scripts[0] + 1:]
    if program in ("make", "source", ".", "diff"):
        return {".": "source"}.get(program, program), None, args
    if program in EXTERNAL:
        return "external", program, args
    return None, program, args


LAUNCHERS = ("msrun", "torchrun")
#: Tools of the user's system, not of this project: named in the README, not checked here.
EXTERNAL = ("git", "pip", "cd", "ls", "cat", "head", "tail", "export", "nvidia-smi", "tar", "wget", "curl", "rm",
            "mkdir", "cp")


def _flags(args):
    return sorted({arg.split("=", 1)[0] for arg in args if arg.startswith("--")})


@functools.lru_cache(maxsize=None)
def _script_help(script):
    result = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, f"{script} --help failed: {result.stderr[-500:]}"
    return result.stdout


def _makefile_variable(name):
    match = re.search(rf"^{name}\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    return match and match.group(1)


# ---- the checks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", _shell_commands())
def test_every_readme_command_names_what_exists(command, capsys):
    kind, target, args = _split(command)
    shown = " ".join(command)
    if kind == "msport":
        from msport.cli import build_parser

        parser = build_parser()
        try:
            parser.parse_args(args)
        except SystemExit as exc:  # --help exits 0; an unknown flag or bad value exits 2
            error = capsys.readouterr().err.strip().splitlines()[-1:]
            assert exc.code == 0, f"README: `{shown}`: msport refuses it: {error}"
        if args and not args[0].startswith("-"):  # argparse takes abbreviations; the README spells flags out
            subcommand = parser._subparsers._group_actions[0].choices[args[0]]
            abbreviated = [f for f in _flags(args[1:]) if f not in subcommand._option_string_actions]
            assert not abbreviated, f"README: `{shown}`: msport {args[0]} has no flag {', '.join(abbreviated)}"
    elif kind == "script":
        assert (REPO / target).is_file(), f"README: `{shown}`: no {target} in the repository"
        if _flags(args):
            listed = _script_help(target)
            missing = [flag for flag in _flags(args) if not re.search(rf"{re.escape(flag)}\b", listed)]
            assert not missing, f"README: `{shown}`: {target} --help does not list {', '.join(missing)}"
    elif kind == "module":
        assert target == "pytest", f"README: `{shown}`: teach tests/test_readme.py to check python -m {target}"
        paths = [a for a in args if not a.startswith("-")]
        assert paths and all((REPO / p.split("::")[0]).exists() for p in paths), f"README: `{shown}`: no such test"
    elif kind == "make":
        targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
        assert set(args) <= targets, f"README: `{shown}`: Makefile has no target {sorted(set(args) - targets)}"
    elif kind == "source":
        venv = _makefile_variable("VENV")
        assert args == [f"{venv}/bin/activate"], f"README: `{shown}`: make setup creates {venv}/bin/activate"
    elif kind == "external":
        pass
    elif kind == "diff":
        assert all((REPO / a).is_file() for a in args), f"README: `{shown}`: no such file"
    else:
        pytest.fail(f"README: `{shown}`: tests/test_readme.py does not know how to check {target!r}; teach it")


@pytest.mark.slow
@pytest.mark.parametrize("command", _shell_commands(run_only=True))
def test_readme_commands_marked_to_run_run(command, tmp_path):
    kind, target, args = _split(command)
    if kind == "source":
        pytest.skip("the test already runs inside the environment that line activates")
    if kind == "msport":
        argv = [sys.executable, "-m", "msport", *args]
    elif kind == "script":
        argv = [sys.executable, str(REPO / target), *args]
    else:
        pytest.fail(f"README: `{' '.join(command)}` is marked to run, but only msport and python scripts run here")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, f"README: `{' '.join(command)}` exited {result.returncode}: {result.stderr[-800:]}"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("body, line", [pytest.param(body, line, id=line) for body, _, line in _blocks("python")])
def test_python_blocks_compile(body, line):
    compile(body, line, "exec")


@pytest.mark.parametrize("body, line", [pytest.param(body, line, id=line)
                                        for body, _, line in _blocks("python", "README.md")])
def test_readme_python_blocks_run(body, line):
    # the README's examples are whole: each runs as written (the docs' excerpts may lean on their context)
    exec(compile(body, line, "exec"), {"__name__": "readme_example"})


def test_the_run_marker_sits_on_a_bash_block():
    # a marker that no longer precedes a block would silently stop running its commands
    for page, text in PAGES.items():
        assert text.count(RUN_MARK) == sum(marked for _, marked, _ in _blocks("bash", page)), page
    assert README.count(RUN_MARK) >= 1


def test_every_docs_page_is_linked_from_the_readme():
    unlinked = [page for page in PAGES if page != "README.md" and f"]({page})" not in README]
    assert not unlinked, f"README.md links no {unlinked}: add a row to its Documentation table"


def test_every_table_column_is_explained():
    from msport.diagnose.audit import TABLE_COLUMNS as AUDIT
    from msport.diagnose.compare_ckpt import TABLE_COLUMNS as COMPARE
    from msport.diagnose.compare_data import TABLE_COLUMNS as COMPARE_DATA
    from msport.diagnose.layer_diff import TABLE_COLUMNS as LAYER_DIFF

    text = "\n".join(PAGES.values()).replace("\\|", "|")  # a | inside a Markdown table cell is escaped
    for command, columns in (("compare-ckpt", COMPARE), ("layer-diff", LAYER_DIFF), ("audit", AUDIT),
                             ("compare-data", COMPARE_DATA)):
        assert all(c.header for c in columns), f"{command} has a column without a header"
        unexplained = [c.header for c in columns if f"`{c.header}`" not in text]
        assert not unexplained, f"neither the README nor docs/ explains {command}'s columns {unexplained}"
