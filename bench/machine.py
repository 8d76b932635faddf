"""The machine a run happens on: cores, CPU model, memory, and the versions that matter."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "missing"
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    words = (done.stdout + done.stderr).split()
    return words[1] if len(words) > 1 else "?"


def describe() -> dict[str, Any]:
    """Facts about this machine and its software, for the top of the report."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "ram_gib": round(_memory_gib(), 1),
        "python": platform.python_version(),
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "sympy": _version("sympy"),
        "fastapi": _version("fastapi"),
        "uvicorn": _version("uvicorn"),
        "wrk": _wrk_version(),
        "kernel": platform.release(),
    }


def line(facts: dict[str, Any]) -> str:
    """One line that names the machine."""
    return (f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram_gib']} GiB RAM, "
            f"Linux {facts['kernel']}; Python {facts['python']}, JAX {facts['jax']} "
            f"(jaxlib {facts['jaxlib']}), SymPy {facts['sympy']}, FastAPI {facts['fastapi']}, "
            f"uvicorn {facts['uvicorn']}, wrk {facts['wrk']}")
