"""Checks of the Terraform code: it parses, is fmt-clean, passes checkov, and agrees with the job."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from lake_ingest import ContractError, JobSettings, contract_item
from lake_ingest._args import GLUE_LOWER_CASE, build_parser, parse_job_args
from lake_ingest._contract_store import check_targets
from lake_ingest._metrics import METRICS
from lake_ingest.local.aws_setup import TABLE_KEYS

if hasattr(hcl2, "START_LINE"):  # the module of bc-python-hcl2, checkov's fork, which parses differently
    raise ImportError(
        "tests/test_terraform.py needs python-hcl2 8.x, but this venv's `hcl2` package is bc-python-hcl2 "
        "(installed with checkov). Keep checkov in its own venv (.venv/tools-checkov) and reinstall python-hcl2."
    )

REPO = Path(__file__).resolve().parents[1]
TF = REPO / "terraform"
MODULES = TF / "modules"
CONTRACTS = REPO / "glue_jobs" / "contracts"
PACKAGE = REPO / "glue_jobs" / "lake_ingest"

#: Arguments of a module block that are Terraform's, not the module's inputs.
META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}

#: Inputs of the state machine module, fixed by the interface agreed with its author.
STATE_MACHINE_INPUTS = {
    "name", "region", "glue_job_name", "contracts_table_name", "contracts_table_arn", "ledger_table_name", "ledger_table_arn", "runs_table_name",
    "runs_table_arn", "sns_topic_arn", "kms_key_arn", "raw_bucket_name", "max_concurrency",
    "schedule_expression", "log_retention_days", "tags", "glue_task_timeout_seconds", "execution_timeout_seconds",
    "lock_wait_seconds", "lock_max_waits",  # the root's timeout depends on them, so the root sets them
}

#: Glue's own job parameters (special parameters of AWS Glue) that the job may set.
GLUE_SPECIAL_ARGUMENTS = {
    "--TempDir", "--extra-py-files", "--extra-jars", "--extra-files", "--additional-python-modules",
    "--python-modules-installer-option", "--job-language", "--job-bookmark-option", "--enable-metrics",
    "--enable-observability-metrics", "--custom-logGroup-prefix", "--custom-logStream-prefix",
    "--enable-auto-scaling", "--enable-spark-ui", "--spark-event-logs-path", "--enable-glue-datacatalog",
    "--enable-job-insights", "--datalake-formats", "--conf", "--user-jars-first",
}

TF_ENV = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


# --------------------------------------------------------------------------- helpers

def unquote(s: Any) -> Any:
    """python-hcl2 8 keeps the quotes of labels and string literals: drop them."""
    if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


def strip_meta(obj: Any) -> Any:
    """The parsed structure without python-hcl2's bookkeeping keys (comments, block markers)."""
    if isinstance(obj, dict):
        return {k: strip_meta(v) for k, v in obj.items() if k not in ("__comments__", "__is_block__")}
    if isinstance(obj, list):
        return [strip_meta(v) for v in obj]
    return obj


def labelled(block: dict[str, Any], label: str) -> Any:
    """The body under a block label, whether the parser keeps its quotes or not."""
    return next(v for k, v in block.items() if unquote(k) == label)


def tf_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf"))


def parse(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return strip_meta(hcl2.load(fh))


def blocks(directory: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, body) of every one-label block of a kind (variable, output, module) in a directory."""
    for path in tf_files(directory):
        for block in parse(path).get(kind, []):
            for label, body in block.items():
                yield unquote(label), body


def declared_variables(directory: Path) -> dict[str, dict[str, Any]]:
    return dict(blocks(directory, "variable"))


def used_variables(directory: Path) -> set[str]:
    """Names referenced as var.<name> anywhere in the directory's code (comments excluded)."""
    text = json.dumps([parse(p) for p in tf_files(directory)])
    return set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))


def balanced(text: str, start: int) -> str:
    """The text from start (an opening bracket) to its matching closing bracket, inclusive."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    in_string = False
    i = start
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in pairs.values():
            if not stack or stack.pop() != ch:
                raise ValueError(f"unbalanced {ch!r} at {i}")
            if not stack:
                return text[start : i + 1]
        i += 1
    raise ValueError("no closing bracket")


def expression_after(text: str, prefix_regex: str) -> str:
    """The bracketed expression that follows a regex (which must end just before the bracket)."""
    m = re.search(prefix_regex, text)
    assert m, f"pattern {prefix_regex!r} not found"
    return balanced(text, m.end())


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir()) if MODULES.is_dir() else []


def require_written(module: Path) -> None:
    assert tf_files(module), f"module {module.name} has no .tf files"


def terraform_console(workdir: Path, expression: str) -> Any:
    """Evaluate a JSON-valued expression with `terraform console` (no providers needed)."""
    proc = subprocess.run(
        ["terraform", "console"], input=f"jsonencode({expression})\n", cwd=workdir, env=TF_ENV,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # The console prints an HCL string literal: JSON escapes, plus $${ and %%{ for template marks.
    literal = proc.stdout.strip().replace("$${", "${").replace("%%{", "%{")
    return json.loads(json.loads(literal))


needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="terraform CLI not installed (only fmt/console are used, no providers); it is not in the package "
           "registries scripts/setup.sh installs from, so these checks run where the machine has it",
)


# --------------------------------------------------------------------------- 1. parse

@pytest.mark.parametrize("path", sorted(TF.rglob("*.tf")), ids=lambda p: str(p.relative_to(TF)))
def test_every_tf_file_parses(path: Path) -> None:
    with open(path, encoding="utf-8") as fh:
        assert isinstance(hcl2.load(fh), dict)


# --------------------------------------------------------------------------- 2. fmt

@needs_terraform
def test_terraform_fmt_is_clean() -> None:
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF)],
        env=TF_ENV, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{proc.stdout}{proc.stderr}"


# --------------------------------------------------------------------------- 2b. the AWS provider

#: Where a machine may keep providers as a Terraform filesystem mirror (``$TF_PROVIDER_MIRROR`` first).
MIRROR_CANDIDATES = (os.environ.get("TF_PROVIDER_MIRROR"), "/opt/tf-plugins", "/usr/local/share/terraform/plugins",
                     "/usr/share/terraform/plugins", str(Path.home() / ".terraform.d" / "plugins"))


def aws_provider_mirror() -> Path | None:
    """The first candidate that holds an unpacked ``hashicorp/aws`` provider, or None."""
    for candidate in filter(None, MIRROR_CANDIDATES):
        if any(Path(candidate).glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*")):
            return Path(candidate)
    return None


def replace_archive_files(root: Path, stand_in: Path) -> dict[Path, set[str]]:
    """Replace every ``archive_file`` data source under root with a local holding the same attributes
    (``output_path``, ``output_md5``, ``output_base64sha256``) of one stand-in zip, and drop the archive
    provider from ``required_providers``. For a machine that has the AWS provider and not the archive
    one: the rest of the stack is checked as written. Returns the replaced data sources by directory."""
    attrs = "{ " + ", ".join(f'{k} = {v}' for k, v in (
        ("output_path", f'"{stand_in}"'), ("output_md5", f'filemd5("{stand_in}")'),
        ("output_base64sha256", f'filebase64sha256("{stand_in}")'))) + " }"
    replaced: dict[Path, set[str]] = {}
    for path in sorted(root.rglob("*.tf")):
        text = re.sub(r"\n[ \t]*archive = \{[^}]*\}", "", path.read_text(encoding="utf-8"))
        while m := re.search(r'data "archive_file" "(\w+)" ', text):
            block = balanced(text, m.end())
            each = re.search(r"^  for_each\s*=\s*(.+)$", block, re.M)  # the block's own, not a dynamic block's
            value = f"{{ for k, v in {each.group(1)} : k => {attrs} }}" if each else attrs
            text = f"{text[:m.start()]}locals {{\n  archive_{m.group(1)} = {value}\n}}{text[m.end() + len(block):]}"
            replaced.setdefault(path.parent, set()).add(m.group(1))
        path.write_text(text, encoding="utf-8")
    for directory, names in replaced.items():
        for path in directory.glob("*.tf"):
            text = path.read_text(encoding="utf-8")
            for name in names:
                text = text.replace(f"data.archive_file.{name}", f"local.archive_{name}")
            path.write_text(text, encoding="utf-8")
    return replaced


@pytest.fixture(scope="module")
def initialised_stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of terraform/ (and the glue_jobs files it reads) initialised offline against the machine's
    AWS provider mirror, with the archive provider's data sources replaced (``replace_archive_files``)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform CLI not installed")
    mirror = aws_provider_mirror()
    if mirror is None:
        pytest.skip("no hashicorp/aws provider in a filesystem mirror (set TF_PROVIDER_MIRROR); "
                    "CodeBuild runs `terraform test` with the providers from the registry")
    work = tmp_path_factory.mktemp("stack")
    ignore = shutil.ignore_patterns("__pycache__", ".terraform", ".build", "*.tfstate*", "*.egg-info")
    shutil.copytree(TF, work / "terraform", ignore=ignore)
    for name in ("contracts", "lake_ingest", "glue_ingest_job.py"):
        source = REPO / "glue_jobs" / name
        (shutil.copytree(source, work / "glue_jobs" / name, ignore=ignore) if source.is_dir()
         else shutil.copy2(source, work / "glue_jobs" / name))
    stand_in = work / "stand_in.zip"
    with zipfile.ZipFile(stand_in, "w") as archive:
        archive.writestr("stand_in.txt", "in place of the archive provider's zips\n")
    replaced = replace_archive_files(work / "terraform", stand_in)
    assert {(d.relative_to(work).as_posix(), n) for d, ns in replaced.items() for n in ns} == {
        ("terraform", "lake_ingest"), ("terraform/modules/state_machine", "function")}
    cli_config = work / "cli.tfrc"
    cli_config.write_text('provider_installation {\n  filesystem_mirror {\n'
                          f'    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }}\n}}\n')
    env = {**TF_ENV, "TF_CLI_CONFIG_FILE": str(cli_config)}
    proc = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"],
                          cwd=work / "terraform", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"terraform init against {mirror}:\n{proc.stdout}{proc.stderr}"
    return work / "terraform", env


def test_the_archive_stand_in_keeps_every_other_line(tmp_path: Path) -> None:
    """What the provider checks below run is the stack as written, but for the archive data sources."""
    shutil.copytree(TF, tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform", ".build"))
    replace_archive_files(tmp_path / "terraform", tmp_path / "z.zip")
    changed = {p.relative_to(tmp_path / "terraform").as_posix() for p in (tmp_path / "terraform").rglob("*.tf")
               if p.read_text() != (TF / p.relative_to(tmp_path / "terraform")).read_text()}
    assert changed == {"versions.tf", "glue_jobs.tf", "modules/state_machine/versions.tf",
                       "modules/state_machine/main.tf"}
    main = (tmp_path / "terraform" / "modules/state_machine/main.tf").read_text()
    assert "archive_file" not in main and "local.archive_function[each.key].output_base64sha256" in main
    assert 'for k, v in local.functions : k =>' in main
    glue = (tmp_path / "terraform" / "glue_jobs.tf").read_text()
    assert "local.archive_lake_ingest.output_md5" in glue and "for k, v in" not in glue
    for path in (tmp_path / "terraform").rglob("*.tf"):
        hcl2.loads(path.read_text())  # still HCL


def test_the_stack_validates_against_the_aws_provider(initialised_stack: tuple[Path, dict[str, str]]) -> None:
    """``terraform validate`` with the real provider schema: every argument and block exists, every
    reference resolves. A deprecation warning fails too (the upgrade to the next major version removes it)."""
    workdir, env = initialised_stack
    proc = subprocess.run(["terraform", "validate", "-no-color"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_plan_and_apply_with_a_mocked_provider(initialised_stack: tuple[Path, dict[str, str]]) -> None:
    """``tests/plan_with_mocks.tftest.hcl``: the whole stack planned and applied against the mocked AWS
    provider (the provider's own validation of ARNs, names and blocks runs), plus the runs that
    expect bad settings to be refused."""
    workdir, env = initialised_stack
    proc = subprocess.run(["terraform", "test", "-no-color"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    runs = re.findall(r'run "(\w+)"\.\.\. (\w+)', out)
    declared = re.findall(r'^run "(\w+)"', (TF / "tests" / "plan_with_mocks.tftest.hcl").read_text(), re.M)
    assert runs == [(name, "pass") for name in declared], out
    assert "Warning" not in out, out


# --------------------------------------------------------------------------- 3. checkov

def checkov_command() -> list[str] | None:
    """A working checkov: $CHECKOV, else the tool venv .venv/tools-checkov, else PATH.

    checkov cannot share the project's venv: it pins boto3==1.35.49 and ships bc-python-hcl2,
    whose ``hcl2`` package is overwritten by python-hcl2 (and the other way round).
    """
    candidates = [os.environ.get("CHECKOV"), str(REPO / ".venv" / "tools-checkov" / "bin" / "checkov"), shutil.which("checkov")]
    for c in candidates:
        if not (c and Path(c).is_file() and os.access(c, os.X_OK)):
            continue
        probe = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=120)
        if probe.returncode == 0:
            return [c]
    return None


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    cmd = checkov_command()
    if cmd is None:
        pytest.skip("no working checkov: python3.11 -m venv .venv/tools-checkov && .venv/tools-checkov/bin/pip install checkov==3.3.30")
    proc = subprocess.run(
        [*cmd, "-d", str(TF), "--framework", "terraform", "--quiet", "--compact", "-o", "json", "--skip-download"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one entry per framework when several run
        report = next(r for r in report if r.get("check_type") == "terraform")
    return report


def test_checkov_finds_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
              for c in checkov_report.get("results", {}).get("failed_checks", [])]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0
    assert summary["failed"] == 0, "\n".join(failed)


def test_every_checkov_skip_gives_a_reason() -> None:
    skip = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
    for path in TF.rglob("*.tf"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = skip.search(line.strip())
            if m:
                reason = (m.group(2) or "").strip()
                assert len(reason) >= 30, f"{path.relative_to(REPO)}:{n}: skip {m.group(1)} needs a real reason"


# --------------------------------------------------------------------------- 4. consistency

def test_the_readme_lists_every_checkov_skip() -> None:
    rows = [line for line in (TF / "README.md").read_text(encoding="utf-8").splitlines()
            if re.match(r"\| CKV", line)]
    for path in sorted(TF.rglob("*.tf")):
        module = path.parent.name
        for check in re.findall(r"#checkov:skip=(CKV\w+):", path.read_text(encoding="utf-8")):
            assert any(row.startswith(f"| {check} ") and f"`{module}`" in row for row in rows), \
                f"terraform/README.md does not list the skip of {check} in {module}"


@pytest.mark.parametrize("directory", [TF, *module_dirs()], ids=lambda p: p.name)
def test_variables_are_typed_described_and_used(directory: Path) -> None:
    require_written(directory)
    declared = declared_variables(directory)
    unused = sorted(set(declared) - used_variables(directory))
    assert not unused, f"declared but never used in {directory.name}: {unused}"
    undeclared = sorted(used_variables(directory) - set(declared))
    assert not undeclared, f"used but not declared in {directory.name}: {undeclared}"
    for name, body in declared.items():
        assert "type" in body, f"{directory.name}: variable {name} has no type"
        assert unquote(body.get("description", "")).strip(), f"{directory.name}: variable {name} has no description"
        if body["type"] in ("bool", "${bool}"):
            assert name.startswith(("create_", "enable_")), f"{directory.name}: boolean {name} must be create_*/enable_*"


class _SeedLoader(yaml.SafeLoader):
    """Reads cfn/seed.yaml with its intrinsic functions (!Ref, !Sub, ...) as plain values."""


_SeedLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
SEED_ENVIRONMENTS = yaml.load((REPO / "cfn" / "seed.yaml").read_text(encoding="utf-8"), Loader=_SeedLoader)[
    "Parameters"]["Environment"]["AllowedValues"]
#: The variables the CodeBuild project sets itself: -var environment=... and TF_VAR_aws_region.
SET_BY_THE_BUILD = {"environment", "aws_region"}
_HCL_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "number": (int, float), "bool": bool, "list(string)": list, "map(string)": dict}


@pytest.mark.parametrize("environment", SEED_ENVIRONMENTS)
def test_each_seed_environment_has_settings_for_every_required_variable(environment: str) -> None:
    """The seed's build passes environments/<environment>.tfvars: with what the build sets itself,
    it must give every variable without a default a value, and only declared ones, typed."""
    path = TF / "environments" / f"{environment}.tfvars"
    assert path.is_file(), f"the seed offers Environment={environment} but {path.relative_to(REPO)} is missing"
    with open(path, encoding="utf-8") as fh:
        values = {k: v for k, v in hcl2.load(fh).items() if not k.startswith("__")}
    declared = {unquote(k): body for k, body in declared_variables(TF).items()}
    assert set(values) <= set(declared), f"not declared: {sorted(set(values) - set(declared))}"
    assert not set(values) & SET_BY_THE_BUILD, "the build sets these itself"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required - SET_BY_THE_BUILD <= set(values), f"no value for {sorted(required - SET_BY_THE_BUILD - set(values))}"
    for name, value in values.items():
        hcl_type = declared[name]["type"].removeprefix("${").removesuffix("}")
        assert isinstance(value, _HCL_TYPES[hcl_type]), f"{name} = {value!r} is not a {hcl_type}"


@pytest.mark.parametrize("directory", [TF, *module_dirs()], ids=lambda p: p.name)
def test_module_calls_pass_declared_inputs(directory: Path) -> None:
    require_written(directory)
    calls = list(blocks(directory, "module"))
    for label, body in calls:
        source = unquote(body["source"])
        if not source.startswith(("./", "../")):
            continue
        target = (directory / source).resolve()
        assert (target / "variables.tf").is_file(), f"module {label}: no variables.tf in {source}"
        declared = declared_variables(target)
        passed = set(body) - META_ARGUMENTS
        assert passed <= set(declared), f"module {label} gets undeclared inputs {sorted(passed - set(declared))}"
        required = {n for n, b in declared.items() if "default" not in b}
        assert required <= passed, f"module {label} misses required inputs {sorted(required - passed)}"


def test_state_machine_gets_exactly_the_agreed_inputs() -> None:
    calls = dict(blocks(TF, "module"))
    assert set(calls["state_machine"]) - META_ARGUMENTS == STATE_MACHINE_INPUTS
    assert unquote(calls["state_machine"]["source"]) == "./modules/state_machine"


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_module_shape(module: Path) -> None:
    require_written(module)
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module / name).is_file(), f"{module.name} has no {name}"
    for path in tf_files(module):
        assert "provider" not in parse(path), f"{path.relative_to(TF)}: no provider blocks inside a module"
    terraform_block = parse(module / "versions.tf")["terraform"][0]
    assert ">=" in terraform_block["required_version"]
    for providers in terraform_block["required_providers"]:
        for provider, spec in providers.items():
            assert ">=" in spec["version"], f"{module.name}: {provider} needs a version floor"
    readme = (module / "README.md").read_text(encoding="utf-8")
    for kind in ("variable", "output"):
        for label, _ in blocks(module, kind):
            assert f"`{label}`" in readme, f"{module.name}/README.md does not list the {kind} {label}"
    assert "tags" in declared_variables(module), f"{module.name} takes no tags map"


def test_root_versions_and_backend() -> None:
    terraform_block = parse(TF / "versions.tf")["terraform"][0]
    # 1.7: tests/plan_with_mocks.tftest.hcl uses mock_provider, which Terraform 1.7.0 introduced.
    assert unquote(terraform_block["required_version"]) == ">= 1.7"
    providers = {k: v for p in terraform_block["required_providers"] for k, v in p.items()}
    assert unquote(providers["aws"]["source"]) == "hashicorp/aws"
    assert unquote(providers["aws"]["version"]) == "~> 5.100"  # the release the stack is validated with
    assert unquote(providers["archive"]["version"]) == "~> 2.4"
    backend = labelled(parse(TF / "backend.tf")["terraform"][0]["backend"][0], "s3")
    assert backend["encrypt"] is True
    # The lock table is the seed stack's own, named per project and environment (cfn/seed.yaml), so
    # it comes from -backend-config like the bucket: a fixed name here would tie every environment
    # to one table.
    assert not {"bucket", "key", "region", "dynamodb_table"} & set(backend), \
        "bucket, key, region and the lock table come from -backend-config"


def glue_default_arguments() -> dict[str, str]:
    """The Glue job's default_arguments: the locals that the job's merge(...) combines."""
    module = MODULES / "glue_ingest_job"
    locals_ = {k: v for path in tf_files(module) for block in parse(path).get("locals", []) for k, v in block.items()}
    job = next(body for label, body in blocks(module, "resource") if label == "aws_glue_job")
    expression = labelled(job, "this")["default_arguments"]
    names = re.findall(r"local\.(\w+)", expression)
    assert names, f"default_arguments should merge locals, got {expression}"
    args: dict[str, str] = {}
    for name in names:
        args.update({unquote(k): v for k, v in locals_[name].items()})
    return args


def test_glue_job_arguments_are_the_ones_the_job_parses() -> None:
    args = glue_default_arguments()
    job_keys = {k[2:] for k in args if re.fullmatch(r"--[a-z][a-z0-9_]*", k) and k not in GLUE_LOWER_CASE}
    glue_keys = set(args) - {f"--{k}" for k in job_keys}
    assert glue_keys <= GLUE_SPECIAL_ARGUMENTS, f"not Glue parameters (typo?): {sorted(glue_keys - GLUE_SPECIAL_ARGUMENTS)}"

    parser = build_parser()
    options = {o[2:]: a for a in parser._actions for o in a.option_strings if o.startswith("--")}
    assert job_keys <= set(options), f"the job does not parse {sorted(job_keys - set(options))}"
    assert not job_keys & {"dataset_id", "run_id"}, "the state machine passes --dataset_id and --run_id per run"
    required = {o for o, a in options.items() if a.required} - {"dataset_id", "run_id"}
    assert required <= job_keys, f"the job requires {sorted(required - job_keys)}"

    # Glue hands the job its own parameters too; the job's parser must accept the whole set.
    argv = ["--dataset_id", "orders", "--run_id", "r1"]
    for key in sorted(args):
        option = options.get(key[2:])
        argv += [key, "3600" if option is not None and option.type is int else "eu-west-1" if key == "--aws_region"
                 else "s3://bucket/x" if key.endswith("_uri") else "x"]
    parsed = parse_job_args(argv)
    assert parsed.settings.raw_uri == "s3://bucket/x" and parsed.aws_region == "eu-west-1"
    assert args["--conf"] == '"spark.hadoop.fs.s3a.endpoint.region=${var.region}"'  # S3A's default: us-east-2
    assert args["--aws_region"] == "${var.region}"  # boto3 reads AWS_DEFAULT_REGION, which Glue is not documented to set


def test_job_settings_match_the_terraform_defaults() -> None:
    args = glue_default_arguments()
    defaults = JobSettings(raw_uri="", curated_uri="", quarantine_uri="")
    assert args["--raw_uri"].startswith('"s3://')
    assert "timeout_minutes * 60" in args["--lock_lease_seconds"]
    root_locals = {k: v for block in parse(TF / "main.tf")["locals"] for k, v in block.items()}
    assert unquote(root_locals["metrics_namespace"]) == defaults.metrics_namespace
    variables = declared_variables(MODULES / "glue_ingest_job")
    assert variables["max_files_per_run"]["default"] == defaults.max_files_per_run
    assert unquote(variables["metrics_namespace"]["default"]) == defaults.metrics_namespace


def test_dynamodb_keys_match_the_job() -> None:
    module = MODULES / "dynamodb_state"
    tables = next(b["tables"] for path in tf_files(module) for b in parse(path).get("locals", []) if "tables" in b)
    by_setting = {"contracts_table": "contracts", "ledger_table": "ledger", "runs_table": "runs"}
    defaults = JobSettings(raw_uri="", curated_uri="", quarantine_uri="")
    for setting, keys in TABLE_KEYS.items():
        table = tables[by_setting[setting]]
        tf_keys = [unquote(table["hash_key"])] + ([unquote(table["range_key"])] if table.get("range_key") else [])
        assert tf_keys == [name for name, _ in keys], setting
        assert {kind for _, kind in keys} == {"S"}
        # Same table names as the job's defaults, with the deployment's prefix instead of "datalake".
        tf_suffix = unquote(table["name"]).removeprefix("${var.name}-")
        assert tf_suffix == getattr(defaults, setting).removeprefix("datalake-"), setting
    text = (module / "main.tf").read_text(encoding="utf-8")
    assert text.count('type = "S"') == 2, "hash and range key attributes are strings"


def test_alarms_use_metrics_the_job_publishes() -> None:
    text = (MODULES / "monitoring" / "main.tf").read_text(encoding="utf-8")
    published = set(METRICS) | {"RunSucceeded", "RunFailed"}
    ours = (set(re.findall(r'metric_name\s*=\s*"(\w+)"', text)) | set(re.findall(r'local\.ns,\s*"(\w+)"', text))
            | set(re.findall(r'\bmetric\s*=\s*"(\w+)"', text)))
    assert {"RunFailed", "RowsQuarantined", "RowsRead"} <= ours
    assert ours - {"ExecutionsFailed", "ExecutionsTimedOut", "FailedInvocations"} <= published  # AWS's own


def test_a_failed_file_and_a_lasting_backlog_alarm_per_dataset() -> None:
    """A file recorded FAILED leaves its run SUCCEEDED, and a file the job may not read is left
    pending on every run: neither shows in RunFailed. FilesFailed alarms on any failed file;
    FilesPending on a daily minimum above 0 (every run of the day left files) for some days."""
    alarms = [body for kind, body in blocks(MODULES / "monitoring", "resource") if kind == "aws_cloudwatch_metric_alarm"]
    failed = next(labelled(b, "dataset_failure") for b in alarms if any(unquote(k) == "dataset_failure" for k in b))
    pending = next(labelled(b, "files_pending") for b in alarms if any(unquote(k) == "files_pending" for k in b))
    text = (MODULES / "monitoring" / "main.tf").read_text(encoding="utf-8")
    kinds = dict(re.findall(r'"([\w-]+)" = \{\s*metric\s*=\s*"(\w+)"', text))
    assert kinds == {"run-failed": "RunFailed", "files-failed": "FilesFailed"}
    def values(body, *keys):
        return tuple(unquote(body[k]) if isinstance(body[k], str) else body[k] for k in keys)

    assert values(failed, "metric_name", "statistic", "threshold", "comparison_operator", "for_each") == (
        "${local.failure_alarms[each.value.kind].metric}", "Sum", 1, "GreaterThanOrEqualToThreshold",
        "${local.dataset_failures}")
    assert values(pending, "metric_name", "statistic", "period", "threshold", "comparison_operator",
                  "evaluation_periods", "treat_missing_data") == (
        "FilesPending", "Minimum", 86400, 0, "GreaterThanThreshold", "${var.files_pending_alarm_days}", "notBreaching")
    call = next(body for label, body in blocks(TF, "module") if label == "monitoring")
    assert values(call, "files_pending_alarm_days") == ("${var.files_pending_alarm_days}",)


def test_every_enabled_dataset_may_run_at_once() -> None:
    """Each dataset runs one at a time (its lock), so the job admits one run per enabled dataset at
    least: a start beyond its limit fails, with its execution and an alert. Runs that the
    account's quotas do not admit wait in Glue's queue."""
    call = next(body for label, body in blocks(TF, "module") if label == "glue_ingest_job")
    assert call["max_concurrent_runs"] == "${max(var.glue_max_concurrent_runs, length(local.dataset_ids))}"
    job = next(body for label, body in blocks(MODULES / "glue_ingest_job", "resource") if label == "aws_glue_job")
    assert labelled(job, "this")["job_run_queuing_enabled"] is True


#: A branch with the defaults: the Glue task (30 min of WAITING, 120 of run, 5 more: 9,300 s), twelve
#: 5-minute waits for the lock (3,600 s) and half an hour of retried starts (1,800 s).
DEFAULT_BRANCH_SECONDS = 9300 + 3600 + 1800


@needs_terraform
@pytest.mark.parametrize(("datasets", "concurrency", "glue_minutes", "wait_minutes", "waits", "task", "timeout"), [
    (3, 4, 120, 30, (300, 12), 9300, 28800),                        # one wave (14,700 s): the 8-hour floor
    (9, 4, 120, 30, (300, 12), 9300, 3 * DEFAULT_BRANCH_SECONDS),  # three waves
    (40, 40, 120, 30, (300, 12), 9300, 28800),                      # all at once
    (0, 4, 120, 30, (300, 12), 9300, 28800),                        # no enabled dataset yet
    (9, 4, 600, 30, (300, 12), 38100, 3 * (38100 + 5400)),          # longer runs, longer branches
    (9, 4, 120, 30, (600, 12), 9300, 3 * (9300 + 9000)),            # longer waits for the lock, too
    (9, 4, 120, 0, (300, 12), 7500, 3 * 12900),                     # no allowance for WAITING: the run alone
    (9, 4, 120, 120, (300, 12), 14700, 3 * (14700 + 5400)),         # a long queue: every wave waits longer
    (200, 1, 2880, 30, (300, 12), 174900, 31536000),                # capped at the year an execution may last
])
def test_the_execution_outlasts_every_wave_of_the_map(tmp_path: Path, datasets: int, concurrency: int,
                                                       glue_minutes: int, wait_minutes: int,
                                                       waits: tuple[int, int], task: int, timeout: int) -> None:
    """The Map runs map_max_concurrency datasets at a time: with more datasets than that, the later
    waves start when earlier ones end, and the execution timeout must leave each wave a whole branch.
    The Glue task of a branch covers the run's WAITING time (glue_wait_allowance_minutes), which
    Glue's own Timeout does not count, as well as the run."""
    root_locals = next(b for b in parse(TF / "main.tf")["locals"] if "execution_timeout_seconds" in b)
    names = ["glue_task_timeout_seconds", "ingest_branch_seconds", "ingest_waves", "execution_timeout_seconds"]
    exprs = {n: root_locals[n][2:-1] for n in names}  # "${...}" as python-hcl2 gives it
    call = next(body for label, body in blocks(TF, "module") if label == "state_machine")
    assert call["execution_timeout_seconds"] == "${local.execution_timeout_seconds}"
    assert call["glue_task_timeout_seconds"] == "${local.glue_task_timeout_seconds}"
    assert (call["lock_wait_seconds"], call["lock_max_waits"]) == ("${var.lock_wait_seconds}", "${var.lock_max_waits}")
    values = {"glue_timeout_minutes": glue_minutes, "glue_wait_allowance_minutes": wait_minutes,
              "map_max_concurrency": concurrency, "lock_wait_seconds": waits[0], "lock_max_waits": waits[1]}
    (tmp_path / "main.tf").write_text(
        "".join(f'variable "{n}" {{\n  default = {v}\n}}\n' for n, v in values.items())
        + f'locals {{\n  dataset_ids = [for i in range({datasets}) : "d${{i}}"]\n'
        + "".join(f"  {n} = {e}\n" for n, e in exprs.items()) + "}\n", encoding="utf-8")
    assert terraform_console(tmp_path, "local.glue_task_timeout_seconds") == task
    assert terraform_console(tmp_path, "local.execution_timeout_seconds") == timeout


def test_the_glue_task_allows_for_the_runs_time_in_waiting() -> None:
    """Glue's Timeout counts the time a run consumes resources; a FLEX run may first wait up to 20
    minutes in WAITING (AWS Glue, "Job run statuses"), and job run queuing keeps runs WAITING too.
    The allowance defaults to more than FLEX's 20 minutes, and the claim's lease is the task's
    timeout, so the lock outlasts the wait as well."""
    allowance = declared_variables(TF)["glue_wait_allowance_minutes"]
    assert allowance["default"] >= 20
    root_locals = next(b for b in parse(TF / "main.tf")["locals"] if "glue_task_timeout_seconds" in b)
    assert "var.glue_wait_allowance_minutes" in root_locals["glue_task_timeout_seconds"]
    job = next(body for label, body in blocks(MODULES / "glue_ingest_job", "resource") if label == "aws_glue_job")
    assert labelled(job, "this")["job_run_queuing_enabled"] is True  # why WAITING is not FLEX's alone
    functions = next(b for path in tf_files(MODULES / "state_machine") for b in parse(path).get("locals", [])
                     if "functions" in b)["functions"]
    assert functions["claim"]["environment"]["LEASE_SECONDS"] == "${tostring(var.glue_task_timeout_seconds)}"


@needs_terraform
@pytest.mark.parametrize(("datasets", "max_waits", "fits"), [
    (3, 12, True), (130, 12, True), (137, 12, False),  # 183 events a branch with the defaults
    (30, 60, True), (31, 60, False),                    # 807 with sixty 1-minute waits
    (622, 1, True), (623, 1, False),                    # 40 with one: 24,880 and 24,920 events
])
def test_the_plan_warns_when_waiting_branches_could_fill_the_history(tmp_path: Path, datasets: int,
                                                                      max_waits: int, fits: bool) -> None:
    """A check block (a warning, not an error) with the history events counted in moto's history."""
    from lake_ingest.local.orchestration import HISTORY_EVENTS_OF_A_BRANCH, HISTORY_EVENTS_PER_WAIT

    output = next(body for label, body in blocks(MODULES / "state_machine", "output")
                  if label == "history_events_per_waiting_branch")
    assert output["value"] == f"${{{HISTORY_EVENTS_OF_A_BRANCH} + {HISTORY_EVENTS_PER_WAIT} * var.lock_max_waits}}"
    [check] = parse(TF / "main.tf")["check"]
    condition = labelled(check, "ingest_history_room")["assert"][0]["condition"][2:-1]
    condition = condition.replace("module.state_machine.history_events_per_waiting_branch",
                                  f"({output['value'][2:-1]})")
    (tmp_path / "main.tf").write_text(
        f'variable "lock_max_waits" {{\n  default = {max_waits}\n}}\n'
        f'locals {{\n  dataset_ids = [for i in range({datasets}) : "d${{i}}"]\n  fits = {condition}\n}}\n',
        encoding="utf-8")
    assert terraform_console(tmp_path, "local.fits") is fits


@needs_terraform
@pytest.mark.parametrize(("alarms", "widgets"), [(2, 1), (100, 1), (101, 2), (205, 3)])
def test_the_dashboard_shows_at_most_100_alarms_per_widget(tmp_path: Path, alarms: int, widgets: int) -> None:
    """A dashboard whose alarm widget lists more than 100 alarms is refused, which would fail the
    deployment that adds the 25th dataset (four alarms each, plus the state machine's two)."""
    text = (MODULES / "monitoring" / "main.tf").read_text(encoding="utf-8")
    expression = expression_after(text, r"\balarm_widgets\s*=\s*")
    (tmp_path / "main.tf").write_text(f'locals {{\n  runs_y = 10\n  alarm_arns = [for i in range({alarms}) : '
                                      f'"arn:alarm:${{i}}"]\n  alarm_widgets = {expression}\n}}\n')
    got = terraform_console(tmp_path, "local.alarm_widgets")
    assert len(got) == widgets and all(len(w["properties"]["alarms"]) <= 100 for w in got)
    assert [a for w in got for a in w["properties"]["alarms"]] == [f"arn:alarm:{i}" for i in range(alarms)]
    assert [w["y"] for w in got] == [16 + 4 * i for i in range(widgets)]  # one below the other
    assert got[0]["properties"]["title"] == ("Alarms" if widgets == 1 else "Alarms (1)")
    assert "local.alarm_widgets" in text[text.index('resource "aws_cloudwatch_dashboard"'):]


@needs_terraform
@pytest.mark.parametrize(("name_prefix", "accepted"), [
    ("datalake", True), ("lake-aws", True), ("data-ssm", True),
    ("aws-challenge", False), ("ssmlake", False),        # SSM parameter paths begin with it
    ("xn--lake", False), ("sthree-lake", False),         # so do the bucket names
    ("amzn-s3-demo-lake", False), ("Datalake", False), ("ab", False),
])
def test_name_prefix_refuses_what_ssm_or_s3_would(tmp_path: Path, name_prefix: str, accepted: bool) -> None:
    """The root's own validations of ``name_prefix``, run by ``terraform console``."""
    text = (TF / "variables.tf").read_text(encoding="utf-8")
    start = text.index('variable "name_prefix"')
    brace = text.index("{", start)
    (tmp_path / "main.tf").write_text(text[start:brace] + balanced(text, brace) + "\n")
    proc = subprocess.run(["terraform", "console", f"-var=name_prefix={name_prefix}"], input="var.name_prefix\n",
                          cwd=tmp_path, env=TF_ENV, capture_output=True, text=True, timeout=120)
    refused = "Invalid value for variable" in proc.stderr  # the console reports it with exit code 0
    assert refused != accepted, proc.stderr
    if accepted:
        assert proc.returncode == 0 and json.loads(proc.stdout.strip()) == name_prefix


#: Resources that keep the lake's data, and their argument that lets terraform destroy delete them.
DATA_KEEPERS = {"aws_s3_bucket": "force_destroy", "aws_dynamodb_table": "deletion_protection_enabled",
                "aws_athena_workgroup": "force_destroy"}


def test_enable_force_destroy_reaches_every_resource_that_keeps_data() -> None:
    """``enable_force_destroy`` (off by default) is the one switch a throw-away environment sets before
    the seed's destroy: without it the tables' deletion protection and the non-empty, versioned
    buckets stop ``terraform destroy`` half-way."""
    assert "default" in declared_variables(TF)["enable_force_destroy"]
    assert declared_variables(TF)["enable_force_destroy"]["default"] is False
    found = []
    for directory in [TF, *module_dirs()]:
        for path in tf_files(directory):
            for block in parse(path).get("resource", []):
                for kind, named in block.items():
                    argument = DATA_KEEPERS.get(unquote(kind))
                    for name, body in (named.items() if argument else ()):
                        found.append((directory.name, unquote(kind), unquote(name)))
                        assert directory != TF, f"{kind}.{name}: the root keeps no data itself"
                        # driven by the module's variable, never a constant
                        assert re.fullmatch(r"\$\{var\.[a-z_]+\}", str(body.get(argument))), (kind, name, argument)
    assert {m for m, _, _ in found} == {"s3_zones", "dynamodb_state", "athena"}
    calls = dict(blocks(TF, "module"))
    assert calls["s3_zones"]["enable_force_destroy"] == "${var.enable_force_destroy}"
    assert calls["athena"]["enable_force_destroy"] == "${var.enable_force_destroy}"
    assert calls["dynamodb_state"]["enable_deletion_protection"] == "${!var.enable_force_destroy}"
    modules = {m.name: m for m in module_dirs()}
    assert declared_variables(modules["s3_zones"])["enable_force_destroy"]["default"] is False
    assert declared_variables(modules["athena"])["enable_force_destroy"]["default"] is False
    assert declared_variables(modules["dynamodb_state"])["enable_deletion_protection"]["default"] is True


def test_the_dashboard_and_the_output_list_every_alarm() -> None:
    module = MODULES / "monitoring"
    alarms = {unquote(name) for path in tf_files(module) for block in parse(path).get("resource", [])
              for kind, named in block.items() if unquote(kind) == "aws_cloudwatch_metric_alarm" for name in named}
    text = (module / "main.tf").read_text(encoding="utf-8")
    listed = set(re.findall(r"aws_cloudwatch_metric_alarm\.(\w+) : a\.arn", expression_after(text, r"\balarm_arns\s*=\s*concat")))
    assert alarms and listed == alarms
    assert dict(blocks(module, "output"))["alarm_arns"]["value"] == "${local.alarm_arns}"


# --------------------------------------------------------------------------- contract items

ITEM_FRAGMENTS = [
    r"dataset_id\s*=\s*\{\s*S\s*=\s*each\.value\.dataset_id\s*\}",
    r"enabled\s*=\s*\{\s*BOOL\s*=\s*try\(each\.value\.enabled,\s*true\)\s*\}",
    r"version\s*=\s*\{\s*N\s*=\s*tostring\(try\(each\.value\.version,\s*1\)\)\s*\}",
    r"document\s*=\s*\{\s*S\s*=\s*jsonencode\(each\.value\)\s*\}",
]


def item_expression() -> str:
    text = (MODULES / "dynamodb_state" / "main.tf").read_text(encoding="utf-8")
    return expression_after(text, r"\bitem\s*=\s*jsonencode")


def terraform_item_emulated(doc: dict[str, Any]) -> dict[str, Any]:
    """The module's item expression, in Python."""
    return {
        "dataset_id": {"S": doc["dataset_id"]},
        "enabled": {"BOOL": doc.get("enabled", True)},
        "version": {"N": str(doc.get("version", 1))},
        "document": {"S": json.dumps(doc)},
    }


def assert_same_item(got: dict[str, Any], want: dict[str, Any], name: str) -> None:
    assert set(got) == set(want), name
    for attr in want:
        assert set(got[attr]) == set(want[attr]), f"{name}: attribute {attr} type"
    assert json.loads(got["document"]["S"]) == json.loads(want["document"]["S"]), f"{name}: document"
    for attr in set(want) - {"document"}:
        assert got[attr] == want[attr], f"{name}: {attr}"
        assert type(next(iter(got[attr].values()))) is type(next(iter(want[attr].values()))), f"{name}: {attr}"


def contract_paths() -> list[Path]:
    return sorted(CONTRACTS.glob("*.yaml"))


def test_item_expression_has_the_emulated_shape() -> None:
    expression = item_expression()
    for fragment in ITEM_FRAGMENTS:
        assert re.search(fragment, expression), f"dynamodb_state item lost {fragment}"
    module_text = (MODULES / "dynamodb_state" / "main.tf").read_text(encoding="utf-8")
    assert 'fileset(var.contracts_dir, "*.yaml")' in module_text


@pytest.mark.parametrize("path", contract_paths(), ids=lambda p: p.stem)
def test_contract_item_matches_the_job(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert_same_item(terraform_item_emulated(doc), contract_item(doc), path.name)


def test_contracts_sharing_a_table_stop_the_plan() -> None:
    """The deployment refuses what the loader refuses: two contracts writing one table."""
    text = (MODULES / "dynamodb_state" / "main.tf").read_text(encoding="utf-8")
    tables = expression_after(text, r"\bcontract_tables\s*=\s*flatten")
    assert re.sub(r"\s+", "", tables) == (
        '([forcinvalues(local.contracts):["${c.target.database}.${c.target.table}",'
        '"${c.target.database}.${c.target.table}_quarantine"]])')
    item = text[text.index('resource "aws_dynamodb_table_item" "contract"'):]
    assert "condition     = length(distinct(local.contract_tables)) == length(local.contract_tables)" in item

    def plan_passes(docs: list[dict[str, Any]]) -> bool:  # the two expressions above, in Python
        names = [f"{d['target']['database']}.{d['target']['table']}{q}" for d in docs for q in ("", "_quarantine")]
        return len(set(names)) == len(names)

    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in contract_paths()]
    assert plan_passes(docs)
    check_targets(docs)
    for table in ("orders", "orders_quarantine"):
        twin = {**docs[0], "dataset_id": "twin", "target": {"database": "sales", "table": table}}
        other = next(d for d in docs if d["target"] == {"database": "sales", "table": "orders"})
        assert not plan_passes([other, twin])
        with pytest.raises(ContractError, match="every dataset needs a table of its own"):
            check_targets([other, twin])


@needs_terraform
@pytest.mark.parametrize("table", [None, "orders", "orders_quarantine"])
def test_contracts_sharing_a_table_evaluated_by_terraform(tmp_path: Path, table: str | None) -> None:
    """The module's own expression and condition, evaluated by Terraform on the contracts, alone
    and with a twin that writes the orders table or its quarantine table."""
    text = (MODULES / "dynamodb_state" / "main.tf").read_text(encoding="utf-8")
    tables = expression_after(text, r"\bcontract_tables\s*=\s*flatten")
    docs = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in contract_paths()}
    if table:
        docs["twin"] = {**docs["orders"], "dataset_id": "twin", "target": {"database": "sales", "table": table}}
    (tmp_path / "main.tf").write_text(
        "locals {\n"
        f"  contracts = jsondecode({json.dumps(json.dumps(docs))})\n"
        f"  contract_tables = flatten{tables}\n"
        "  fits = length(distinct(local.contract_tables)) == length(local.contract_tables)\n"
        "}\n", encoding="utf-8")
    assert terraform_console(tmp_path, "local.fits") is (table is None)


def test_contracts_reading_another_bucket_stop_the_plan() -> None:
    """The job reads any bucket a contract names; the deployment grants the raw bucket only, so
    the plan refuses a contract that names another, and every contract here reads raw."""
    text = (MODULES / "dynamodb_state" / "main.tf").read_text(encoding="utf-8")
    item = text[text.index('resource "aws_dynamodb_table_item" "contract"'):]
    assert 'condition     = try(each.value.source.bucket, "raw") == "raw"' in item
    for path in contract_paths():
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["source"].get("bucket", "raw") == "raw", path.name
    glue = (MODULES / "glue_ingest_job" / "main.tf").read_text(encoding="utf-8")
    assert 'resources = ["${local.bucket_arns.raw}/*"]' in glue  # the one source bucket the job may read


@needs_terraform
def test_contract_items_evaluated_by_terraform(tmp_path: Path) -> None:
    """The module's own expression, evaluated by Terraform's yamldecode/jsonencode."""
    expression = item_expression().replace("each.value", "c")
    (tmp_path / "main.tf").write_text(
        "locals {\n"
        f'  dir = "{CONTRACTS.as_posix()}"\n'
        '  docs = { for f in fileset(local.dir, "*.yaml") : f => yamldecode(file("${local.dir}/${f}")) }\n'
        f"  items = {{ for f, c in local.docs : f => jsonencode{expression} }}\n"
        "}\n",
        encoding="utf-8",
    )
    items = terraform_console(tmp_path, "local.items")
    assert sorted(items) == [p.name for p in contract_paths()]
    for name, item_json in items.items():
        doc = yaml.safe_load((CONTRACTS / name).read_text(encoding="utf-8"))
        assert_same_item(json.loads(item_json), contract_item(doc), name)


# --------------------------------------------------------------------------- the package zip

def package_files_expected() -> list[str]:
    return sorted(
        p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py")
        if "local" not in p.relative_to(PACKAGE).parts[:-1] and "__pycache__" not in p.parts
    )


@needs_terraform
def test_zip_file_list_evaluated_by_terraform(tmp_path: Path) -> None:
    text = (TF / "glue_jobs.tf").read_text(encoding="utf-8")
    expression = expression_after(text, r"\blake_ingest_files\s*=\s*sort").replace(
        "local.glue_jobs_dir", f'"{PACKAGE.parent.as_posix()}"')
    (tmp_path / "main.tf").write_text(f"locals {{\n  files = sort{expression}\n}}\n", encoding="utf-8")
    assert terraform_console(tmp_path, "local.files") == package_files_expected()


def test_zip_of_the_package_is_importable_without_local(tmp_path: Path) -> None:
    """The --extra-py-files zip (lake_ingest without local/) is enough for the Glue entry script."""
    files = package_files_expected()
    assert "lake_ingest/__init__.py" in files and not [f for f in files if f.startswith("lake_ingest/local/")]
    archive = tmp_path / "lake_ingest.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in files:
            zf.write(PACKAGE.parent / f, f)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import lake_ingest, lake_ingest._args, lake_ingest._aws, lake_ingest._job;"
        "assert lake_ingest.__file__.startswith(sys.argv[1]), lake_ingest.__file__;"
        "lake_ingest._args.build_parser()"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_readme_says_what_the_catalog_encryption_default_leaves_out() -> None:
    """enable_catalog_encryption stays off by default, since the Data Catalog's encryption settings
    are one per account and region; terraform/README.md must then say plainly that the catalog's
    metadata is the store not encrypted with the lake key, and how to turn it on."""
    variable = declared_variables(TF)["enable_catalog_encryption"]
    assert variable["default"] is False
    assert "one per account and region" in unquote(variable["description"])
    readme = re.sub(r"\s+", " ", (TF / "README.md").read_text(encoding="utf-8"))
    assert "the one store not encrypted with the lake key" in readme
    assert "set `enable_catalog_encryption = true` in `environments/<environment>.tfvars`" in readme
