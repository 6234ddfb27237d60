"""Runs the code of a documentation page, so the pages cannot drift from the library.

A page's fenced `python` and `bash` blocks run in order, as one Python program
in a fresh interpreter: Python blocks as written (they share one namespace),
shell blocks through `bash -euo pipefail`. Other blocks (`text`, `json`, ...)
are output shown to the reader and are not run, and neither is a block right
after the line `<!-- not run -->` (for example a Dataflow submission).

The program runs in a working directory of its own, where `data/` is the
public sample datasets and `benchmarks/` the repository's benchmark scripts,
so the pages can use the paths a reader would.

    python -m tests.docs.pages docs/tutorials/02-autodim-criteo.md --workdir runs/t2
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
from typing import List, Sequence, Tuple

from tests.conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN_LANGUAGES = ("python", "bash")
NOT_RUN = "<!-- not run -->"
_FENCE = re.compile(
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)

_SHELL = """
import subprocess as _subprocess, sys as _sys


def _shell(code):
    _sys.stdout.flush()
    _subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True)
"""


def code_blocks(markdown: str) -> List[Tuple[str, str]]:
    """The `(language, code)` of every block of the page that runs, in order."""
    blocks = []
    for match in _FENCE.finditer(markdown):
        before = markdown[: match.start()].rstrip().splitlines()
        if before and before[-1].strip() == NOT_RUN:
            continue
        if match.group("lang") in RUN_LANGUAGES:
            blocks.append((match.group("lang"), match.group("code")))
    return blocks


def program(markdown: str, replacements: Sequence[Tuple[str, str]] = ()) -> str:
    """The page's runnable blocks as one Python program.

    `replacements` are `(text, instead)` pairs applied to the code of the
    blocks, for a run with other settings than the page's (the tests train
    for fewer epochs). Each text must be in the code, so that a pair cannot
    outlive the page it was written for.
    """
    blocks = code_blocks(markdown)
    for text, instead in replacements:
        if not any(text in code for _, code in blocks):
            raise ValueError(f"{text!r} is not in the code of the page")
        blocks = [(language, code.replace(text, instead)) for language, code in blocks]
    parts = [_SHELL]
    for language, code in blocks:
        parts.append(code if language == "python" else f"_shell({code!r})")
    return "\n".join(parts)


def prepare_workdir(workdir: pathlib.Path) -> pathlib.Path:
    """Creates `workdir` with the `data/` and `benchmarks/` links the pages use."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, target in (("data", SHARED_DATA), ("benchmarks", ROOT / "benchmarks")):
        link = workdir / name
        if not link.exists() and target.exists():
            link.symlink_to(target, target_is_directory=True)
    return workdir


def run_page(
    page: pathlib.Path,
    workdir: pathlib.Path,
    timeout: float = 1800,
    replacements: Sequence[Tuple[str, str]] = (),
):
    """Runs the page's code in `workdir`; returns the `CompletedProcess`.

    `replacements` change the code before it runs (see `program`).
    """
    prepare_workdir(workdir)
    script = workdir / f"{page.stem}.py"
    code = program(page.read_text(encoding="utf-8"), replacements)
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", MPLBACKEND="Agg")
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, script.name],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=pathlib.Path)
    parser.add_argument("--workdir", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    result = run_page(args.page.resolve(), args.workdir.resolve())
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr[-5000:])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
