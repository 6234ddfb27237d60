"""What a benchmark ran on (machine, library versions, code state), and its result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from typing import Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command_output(args: Sequence[str]) -> str:
    """The stripped stdout of a command, or "" when it fails."""
    try:
        return subprocess.run(
            list(args), capture_output=True, text=True, check=True, cwd=REPO_ROOT
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description(packages: Sequence[str] = ("tensorflow", "numpy")) -> dict:
    """CPU model, cores, memory, OS and the versions of `packages` (distribution names)."""
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    description = {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kib / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for package in packages:
        description[package.replace("-", "_")] = _version(package)
    return description


def code_state() -> dict:
    """The commit measured and whether the library had uncommitted changes."""
    return {
        "commit": _command_output(["git", "rev-parse", "HEAD"]),
        "library_modified": bool(
            _command_output(["git", "status", "--porcelain", "--", "keras_dimsel"])
        ),
    }


def write_results(summary: dict, report: str, out: str) -> None:
    """Writes `summary` as JSON to `out`, `report` beside it as `.md`, and prints the report."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(report)
    print(report)
