"""What a benchmark ran on (machine, library versions, code state), and its result files."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
from importlib import metadata
from typing import Optional, Sequence

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


def spread(values: Sequence[float]) -> dict:
    """The values of repeated measurements with their median, mean and sample std."""
    return {
        "values": list(values),
        "median": statistics.median(values),
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def script_environment() -> dict:
    """This process's environment, with the repository first on `PYTHONPATH`: for a
    benchmark script run as a child process, which must import this checkout's library."""
    path = os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def reset_peak_rss() -> bool:
    """Resets this process's peak RSS counter (Linux); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mib(key: str) -> Optional[float]:
    """A `/proc/self/status` memory line in MiB, or None when it is not there."""
    try:
        with open("/proc/self/status") as f:
            match = re.search(rf"{key}:\s+(\d+)\s+kB", f.read())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def peak_rss_mib(reset_worked: bool) -> float:
    """This process's peak RSS in MiB: since the last reset, or over its life."""
    peak = _status_mib("VmHWM") if reset_worked else None
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> Optional[float]:
    """This process's resident memory now, in MiB; None where Linux's status file is missing."""
    return _status_mib("VmRSS")


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
