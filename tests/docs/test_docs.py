"""The documentation site builds strictly, and every tutorial's code runs."""

import pathlib
import re
import subprocess
import sys

import pytest

from tests.docs.pages import ROOT, SHARED_DATA, code_blocks, program, run_page

TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))


def test_site_builds_strictly(tmp_path):
    mkdocs = pathlib.Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "layers" / "index.html").exists()


def test_pages_split_into_the_blocks_that_run():
    page = "\n".join(
        [
            "```python",
            "x = 1",
            "```",
            "```text",
            "output",
            "```",
            "<!-- not run -->",
            "```bash",
            "gcloud something",
            "```",
            "```bash",
            "echo $X",
            "```",
        ]
    )
    assert code_blocks(page) == [("python", "x = 1\n"), ("bash", "echo $X\n")]
    assert "_shell('echo $X\\n')" in program(page)


@pytest.mark.e2e
@pytest.mark.parametrize("page", TUTORIALS, ids=[page.stem for page in TUTORIALS])
def test_tutorial_runs(page, tmp_path):
    code = program(page.read_text(encoding="utf-8"))
    if re.search(r"(?<![\w/])data/", code) and not SHARED_DATA.is_dir():
        pytest.skip(f"the tutorial reads the sample data, not found at {SHARED_DATA}")
    result = run_page(page, tmp_path)
    assert result.returncode == 0, (
        f"{page.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
