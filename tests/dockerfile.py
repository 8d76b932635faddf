"""Read the Dockerfile's instructions, so tests check the image's real contents."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), arguments, and the stage it is in."""

    keyword: str
    arguments: str
    stage: int


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, arguments.strip(), stage))
    return out


def final_stage(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions of the last stage: what the image runs with."""
    all_of = instructions(path)
    last = max(i.stage for i in all_of)
    return [i for i in all_of if i.stage == last]


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of a CMD / ENTRYPOINT / HEALTHCHECK CMD (ValueError if not exec form)."""
    text = instruction.arguments
    if instruction.keyword == "HEALTHCHECK":
        text = text[text.index("CMD ") + 4:]
    argv = json.loads(text)
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError(f"{instruction.keyword} is not in exec (JSON array) form")
    return argv


def cmd(path: Path = DOCKERFILE) -> list[str]:
    """The image's CMD as an argv list."""
    (last,) = [i for i in final_stage(path) if i.keyword == "CMD"][-1:]
    return exec_form(last)


def env(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ENV of the final stage (``KEY=VALUE`` form), without expanding ``$VARS``."""
    out: dict[str, str] = {}
    for instruction in final_stage(path):
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.arguments):
                key, _, value = word.partition("=")
                out[key] = value
    return out


def copy_sources(path: Path = DOCKERFILE) -> list[str]:
    """The build-context paths that COPY instructions take (not those ``--from`` a stage)."""
    sources: list[str] = []
    for instruction in instructions(path):
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.arguments)
        if any(w.startswith("--from") for w in words):
            continue
        args = [w for w in words if not w.startswith("--")]
        sources += args[:-1]
    return sources
