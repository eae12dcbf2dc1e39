"""The notebooks: numbered in reading order, committed without outputs, thin, and runnable top to bottom."""

from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NAME = re.compile(r"^(\d{2})_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")

#: A function longer than this in a notebook is logic that belongs in the package.
MAX_FUNCTION_LINES = 15
CELL_TIMEOUT_SECONDS = 600
#: Kept out of the kernel: the notebooks set their own fake credentials for the emulator, and the
#: cell tagged `aws` must find no workgroup, so that a test run never reaches a real account.
KERNEL_ENV_DROP = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                   "AWS_PROFILE", "LAKE_ATHENA_WORKGROUP", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                   "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")
#: Nor may boto3 ask an instance's metadata service for a role's credentials (a CI runner on EC2).
KERNEL_ENV_SET = {"AWS_EC2_METADATA_DISABLED": "true"}
STRIP_HINT = "strip it with: jupyter nbconvert --clear-output --inplace notebooks/*.ipynb"


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in read(path).cells if c.cell_type == "code"]


def ids(path: Path) -> str:
    return path.name


def test_notebooks_are_numbered_in_reading_order_without_gaps() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"
    names = [p.name for p in NOTEBOOKS]
    assert [n for n in names if not NAME.match(n)] == [], "notebooks must be named NN_topic.ipynb"
    numbers = [int(NAME.match(n).group(1)) for n in names]  # type: ignore[union-attr]
    assert numbers == list(range(1, len(names) + 1)), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_without_outputs_or_execution_counts(path: Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs or execution counts; {STRIP_HINT}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_first_cell_is_a_markdown_title(path: Path) -> None:
    first = read(path).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebooks_import_the_package_and_hold_no_job_logic(path: Path) -> None:
    sources = [c.source for c in code_cells(path)]
    assert any("import lake_ingest" in s for s in sources), f"{path.name} does not use the package"
    for source in sources:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            assert not isinstance(node, ast.ClassDef), f"{path.name}: class {node.name}: put it in the package"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, (
                    f"{path.name}: def {node.name} has {length} lines (at most {MAX_FUNCTION_LINES}); "
                    "logic of that size belongs in lake_ingest")


def test_cells_that_reach_aws_are_tagged() -> None:
    for path in NOTEBOOKS:
        for cell in code_cells(path):
            if "awswrangler" in cell.source:
                assert "aws" in cell.metadata.get("tags", []), f"{path.name}: an awswrangler cell without the aws tag"


#: What each notebook must show once run: the results its text walks the reader through.
EXPECTED_OUTPUT = {
    "01_overview.ipynb": ["configure_spark, contract_item", "04_ingest_locally.ipynb"],
    "02_storage_and_security.ipynb": ["com.amazonaws.<region>.s3", "<var.name>-glue"],
    "03_contracts_in_dynamodb.ipynb": [
        "invalid contract for dataset 'orders':", "unknown type 'integr'",
        "job reads back the same contract: True", "enabled datasets: ['customers', 'meter_readings']"],
    "04_ingest_locally.ipynb": ["[orders] done: 2 files, 1200 rows read, 1182 written, 18 quarantined",
                                "status='SUCCEEDED'"],
    "05_orchestration.ipynb": ["same states as the template: True", "execution: SUCCEEDED", "execution: FAILED",
                               "error: DatasetsFailed", '1 of 3 datasets failed: ["orders"]',
                               "Glue job run: FAILED - DataQualityError"],
    "06_querying_with_athena.ipynb": ["tables: ['plant.meter_readings'", "WHERE order_date = DATE '2026-11-02'"],
    "07_cost_model.ipynb": ["reaches the 1-minute minimum at", "raw zone: STANDARD -> STANDARD_IA after 30 d"],
    "08_deployment.ipynb": ["cfn-lint cfn/seed.yaml: exit code 0", "E2015 Default should be a value within",
                            "-backend-config dynamodb_table"],
}


def output_text(nb: nbformat.NotebookNode) -> str:
    """The text a reader sees under the code cells: streams and the plain text of results."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if out.output_type == "stream" else out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_every_notebook_has_its_expected_output() -> None:
    assert sorted(EXPECTED_OUTPUT) == [p.name for p in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_top_to_bottom(path: Path) -> None:
    """Run the notebook in a fresh kernel of this interpreter; any failing cell fails the test,
    and so does a result the notebook's text promises that its outputs do not show.

    With NOTEBOOKS_OUT set, the executed copy is written there (``make notebooks``); the
    notebook in git stays without outputs.
    """
    from nbclient import NotebookClient

    nb = read(path)
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_ENV_DROP} | KERNEL_ENV_SET
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_SECONDS, startup_timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    started = time.monotonic()
    try:
        client.execute(env=env)
    except Exception:
        # The error names only the failing cell; what the cells before it printed often says why.
        print(f"{path.name}, the outputs before the failing cell:\n{output_text(nb)}")
        raise
    finally:
        out = os.environ.get("NOTEBOOKS_OUT")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, Path(out) / path.name)
    print(f"{path.name}: {time.monotonic() - started:.1f} s")
    shown = output_text(nb)
    assert [text for text in EXPECTED_OUTPUT[path.name] if text not in shown] == [], f"{path.name} printed:\n{shown}"
