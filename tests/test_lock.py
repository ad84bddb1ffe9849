"""requirements/test.txt (the lock CI and contributors install, made by scripts/lock.sh) agrees with
pyproject.toml: every requirement of the package and of its test and dev extras is pinned there, with
hashes, at a version its range admits.  A change to one without the other fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "test.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$")


def locked_pins(text: str) -> dict[str, list[tuple[str, str | None, int]]]:
    """name -> [(version, marker, number of hashes)] of every pin in a `uv pip compile` lock."""
    pins: dict[str, list] = {}
    current = None
    for line in text.splitlines():
        if match := PIN.match(line):
            current = [match["version"], match["marker"], 0]
            pins.setdefault(canonicalize_name(match["name"]), []).append(current)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current[2] += 1
    return {name: [tuple(pin) for pin in entries] for name, entries in pins.items()}


def project_requirements() -> list[Requirement]:
    """The package's dependencies and those of its test and dev extras, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    found, todo = [], [*project["dependencies"], *extras["test"], *extras["dev"]]
    while todo:
        requirement = Requirement(todo.pop())
        if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
            todo += [item for extra in requirement.extras for item in extras[extra]]
        else:
            found.append(requirement)
    return found


def test_every_requirement_is_locked_at_a_version_its_range_admits():
    pins = locked_pins(LOCK.read_text())
    assert LOCK.read_text().splitlines()[1].strip() == "#    scripts/lock.sh"  # made by the documented command
    for requirement in project_requirements():
        entries = pins.get(canonicalize_name(requirement.name))
        assert entries, f"{requirement.name} is not in {LOCK.name}: run scripts/lock.sh"
        here = [(version, hashes) for version, marker, hashes in entries if marker is None or Marker(marker).evaluate()]
        assert len(here) == 1, f"{requirement.name}: {entries}"
        version, hashes = here[0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name}=={version} in {LOCK.name} is outside pyproject.toml's {requirement}: "
            "run scripts/lock.sh")
        assert hashes > 0, f"{requirement.name} has no hash"


def test_the_checks_catch_a_disagreement():
    pins = locked_pins("torch==2.14.1 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n"
                       "numpy==2.5.5 ; python_full_version >= '3.12' \\\n    --hash=sha256:ef\n")
    assert pins == {"torch": [("2.14.1", None, 2)], "numpy": [("2.5.5", "python_full_version >= '3.12'", 1)]}
    assert not Requirement("torch>=2.15").specifier.contains(pins["torch"][0][0])
