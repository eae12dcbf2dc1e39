"""scripts/setup.sh, the first thing `make demo` and `make test` run on a fresh machine."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).parents[1] / "scripts" / "setup.sh"


def functions(*names: str) -> str:
    """The shell source of the named top-level functions of setup.sh (one-line ones too)."""
    text = SETUP.read_text()
    out = []
    for name in names:
        match = re.search(rf"^{name}\(\) \{{.*?\}}$\n|^{name}\(\) \{{\n.*?^\}}\n", text, re.M | re.S)
        assert match, f"setup.sh has no function {name}"
        out.append(match.group(0))
    return "".join(out)


def fake_java(home: Path, major: int) -> Path:
    """A Java home whose `java -version` says ``major``, as the JDK writes it (to stderr)."""
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{major}.0.9\" 2025-10-21' >&2\n")
    java.chmod(0o755)
    return home


def java17_home(env: dict[str, str]) -> str:
    script = functions("java_major", "java17_home") + "java17_home\n"
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_java_home_is_taken_when_it_is_17_and_passed_over_when_it_is_not(tmp_path):
    """A Java 17 that JAVA_HOME names (an SDK manager's, under /opt) is used as it is, even when
    the default java is another version; a JAVA_HOME of another version is passed over."""
    seventeen = fake_java(tmp_path / "jdk-17", 17)
    eleven = fake_java(tmp_path / "jdk-11", 11)
    path = f"{eleven}/bin:/usr/bin:/bin"  # the default java is 11
    assert java17_home({"PATH": path, "JAVA_HOME": str(seventeen)}) == str(seventeen)
    found = java17_home({"PATH": path, "JAVA_HOME": str(eleven)})
    assert found != str(eleven)
    assert found == "" or found.startswith("/usr/lib/jvm/java-17-")  # an installed 17, if there is one


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (scripts/setup.sh installs it with apt-get)")
def test_setup_passes_shellcheck():
    run = subprocess.run(["shellcheck", "-S", "warning", str(SETUP)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout


def test_constraints_agree_with_the_pins():
    """pip refuses a pin of pyproject.toml that constraints.txt holds at another version; every
    pinned package is in constraints.txt, at its pin."""
    import tomllib

    root = SETUP.parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in [d for extra in project["optional-dependencies"].values() for d in extra]:
        name, _, version = spec.partition("==")
        pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    held = dict(line.lower().split("==") for line in (root / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert {n: held.get(n.replace("_", "-")) for n in pins} == pins
    assert "pyspark" in held and "lake-ingest" not in held  # the project itself is installed editable


@pytest.mark.parametrize(("version", "recent"), [
    ("v18.19.0", False), ("v20.15.1", False), ("v20.16.0", True), ("v20.20.2", True), ("v22.1.0", True),
    ("v0", False)])  # v0: no node at all
def test_asl_validator_needs_node_20_16(version, recent):
    """package-lock.json holds a dependency that needs Node 20.16; an older Node (Debian 12 ships
    18) gets no validator, and its test is skipped and listed, instead of failing at run time."""
    run = subprocess.run(["bash", "-c", functions("node_is_recent") + f"node_is_recent {version}"], timeout=30)
    assert (run.returncode == 0) is recent
