"""The README's promises: its commands exist, run, and say what the README says they say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from lake_ingest._args import build_parser

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def make_target(name: str) -> str:
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{name}:.*\n((?:\t.*\n)+)", text, re.M)
    assert match, f"no make target {name}"
    return match.group(1)


def test_the_two_commands():
    assert "make demo" in README and "make test" in README
    assert "lake_ingest.local.demo" in make_target("demo")
    assert "pytest" in make_target("test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "setup" in re.search(r"^test:(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1)


def test_every_make_target_in_the_readme_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    mentioned = set(re.findall(r"`make ([a-z][a-z-]*)", README)) | set(re.findall(r"^make ([a-z][a-z-]*)", README, re.M))
    assert mentioned and mentioned <= targets, mentioned - targets


def test_readme_points_at_files_that_exist():
    for path in re.findall(r"`((?:glue_jobs|terraform|cfn|architecture|benchmarks|notebooks|tests)/[^`*<> ]+)`", README):
        assert (ROOT / path.rstrip("/")).exists(), path


def test_documented_job_flags_exist():
    block = README.split("## Running the job yourself")[1].split("```")[1]
    setup, job = block.split("bin/lake-ingest", 1)
    flags = set(re.findall(r"--([a-z_]+)", job))
    known = {a.dest for a in build_parser()._actions}
    assert flags and flags <= known, flags - known
    assert "-m lake_ingest.local.aws_setup --endpoint-url" in setup  # the account the job runs against


def demo_env(home: Path) -> dict[str, str]:
    """A bare environment, but for the Java that `make` chose (the default java may be another)."""
    java = {"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}
    return {"PATH": "/usr/bin:/bin", "LAKE_SPARK_DRIVER_MEMORY": "1g", "HOME": str(home), **java}


@pytest.mark.slow
def test_demo_runs_twice_and_the_second_run_adds_nothing(tmp_path):
    cmd = [sys.executable, "-m", "lake_ingest.local.demo", "--lake-dir", str(tmp_path / "lake"),
           "--days", "2", "--rows-per-file", "400"]
    (tmp_path / "lake" / "raw" / "stale").mkdir(parents=True)  # --fresh (make demo-fresh) starts from nothing
    assert "--fresh" in make_target("demo-fresh")
    env = demo_env(tmp_path)
    first = subprocess.run([*cmd, "--fresh"], capture_output=True, text=True, timeout=300, env=env,
                           check=True).stdout
    assert not (tmp_path / "lake" / "raw" / "stale").exists()
    for dataset in ("orders", "customers", "meter_readings"):
        assert re.search(rf"^{dataset}\s+\| SUCCEEDED \|\s+2 \|\s+0 \|", first, re.M), first
    assert "country | status" in first and "Nothing new" not in first
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=True).stdout
    assert "Nothing new to ingest: every raw file is already in the ledger." in second
    assert re.search(r"^orders\s+\| SUCCEEDED \|\s+0 \|\s+2 \|", second, re.M), second

    # Lineage for every format (gzip CSV, JSON Lines, Parquet): each curated row names a raw file.
    raw_files = {p.name for p in (tmp_path / "lake" / "raw").rglob("*") if p.is_file()}
    for table in ("orders", "customers", "meter_readings"):
        [files] = list((tmp_path / "lake" / "curated").glob(f"*/{table}"))
        with duckdb.connect() as con:
            names = con.execute(
                f"SELECT DISTINCT regexp_extract(lake_source_file, '[^/]+$') FROM read_parquet("
                f"'{files}/**/*.parquet', hive_partitioning = false)").fetchall()
        assert len(names) == 2 and {n for (n,) in names} <= raw_files, (table, names)


@pytest.mark.slow
def test_demo_through_step_functions(tmp_path):
    assert "--step-functions" in make_target("demo-sfn") and "make demo-sfn" in README
    cmd = [sys.executable, "-m", "lake_ingest.local.demo", "--lake-dir", str(tmp_path / "lake"),
           "--days", "1", "--rows-per-file", "300", "--step-functions"]
    env = demo_env(tmp_path)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=True).stdout
    assert "[step functions] PlanDatasets" in out and "[step functions] ExecutionSucceeded" in out
    assert "definition: terraform/modules/state_machine/ingest.asl.json" in out
    for dataset in ("orders", "customers", "meter_readings"):
        assert re.search(rf"^{dataset}\s+\| SUCCEEDED \|\s+1 \|", out, re.M), out


@pytest.mark.parametrize("module", ["lake_ingest.local.demo", "lake_ingest.cli", "benchmarks.bench_ingest"])
def test_documented_commands_answer_help(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0 and "usage" in out.stdout.lower(), out.stderr


def test_make_lint_passes():
    """What `make lint` runs, minus the setup: ruff and mypy here; its `terraform fmt -check` is
    tests/test_terraform.py's test_terraform_fmt_is_clean."""
    recipe = make_target("lint")
    assert "ruff check" in recipe and "mypy" in recipe and "terraform fmt" in recipe
    bin_dir = Path(sys.executable).parent
    ruff_paths = re.search(r"ruff check (.+)$", recipe, re.M).group(1).split()  # the recipe's own paths
    assert "glue_jobs" in ruff_paths and "notebooks" in ruff_paths
    for cmd in ([str(bin_dir / "ruff"), "check", *ruff_paths], [str(bin_dir / "mypy")]):
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr


def test_conda_environment_matches_the_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "openjdk=17" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .[local,dev]"]
    assert '"pyspark==3.5.6"' in (ROOT / "pyproject.toml").read_text()
