"""The architecture diagrams: they render, they draw every component of the challenge's picture,
and every box stands for infrastructure that terraform/ or cfn/seed.yaml really creates, or, for
the VPC, really looks up."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "architecture"
TERRAFORM = REPO / "terraform"

#: The components of the challenge's picture (awscp.png), exactly as the brief names them.
PICTURE = {
    "AWS Cloud", "VPC", "AWS Step Functions workflow", "IAM", "AWS Glue", "Amazon Athena",
    "AWS Lambda", "Amazon SNS", "AWS Step Functions", "Amazon CloudWatch", "CloudWatch Alarm",
    "CloudWatch Rule", "CloudWatch Event (event-based)", "CloudWatch Event (time-based)",
    "AWS CodeBuild", "AWS CloudFormation", "CloudFormation Change set", "CloudFormation Stack",
    "CloudFormation Template", "AWS Systems Manager Parameter Store", "Amazon S3",
    "AWS Secrets Manager", "Amazon DynamoDB", "DynamoDB Attributes", "DynamoDB Items",
    "DynamoDB Table",
}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz `dot` is not installed (scripts/setup.sh installs it with apt-get)",
)


def load(name: str) -> ModuleType:
    """A module of architecture/ (a folder of scripts, not a package), loaded from its file."""
    module_name = f"architecture_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ARCHITECTURE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def render() -> ModuleType:
    return load("render")  # needs the pinned `diagrams` package of the dev extra


@pytest.fixture(scope="module")
def components() -> ModuleType:
    return load("components")


# --------------------------------------------------------------------------- rendering


@needs_dot
@pytest.mark.parametrize("name", ["data_plane", "deployment_plane"])
def test_diagram_renders_to_a_png(render: ModuleType, tmp_path: Path, name: str) -> None:
    png = getattr(render, name)(tmp_path)

    assert png == tmp_path / f"{name}.png"
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{png} is not a PNG"
    assert len(data) > 50_000, f"{png} is only {len(data)} bytes: did the icons go missing?"
    # diagrams writes the Graphviz source next to the image and removes it: nothing else is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == [png.name]


@needs_dot
def test_render_all_writes_both_pictures(render: ModuleType, tmp_path: Path) -> None:
    pngs = render.render_all(tmp_path)

    assert [p.name for p in pngs] == ["data_plane.png", "deployment_plane.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)


def test_committed_pictures_are_pngs() -> None:
    for name in ("data_plane", "deployment_plane"):
        png = ARCHITECTURE / f"{name}.png"
        assert png.is_file(), f"{png} is missing: run `make diagrams` and commit it"
        assert png.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- what is drawn


@pytest.fixture(scope="module")
def drawn(
    render: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, set[Any]]]:
    """Per diagram: the node classes instantiated and the cluster labels opened, recorded while
    the diagram code runs (Graphviz is not called, so this needs no `dot`)."""
    import diagrams

    seen: dict[str, dict[str, set[Any]]] = {}
    current: dict[str, set[Any]] = defaultdict(set)
    node_init, cluster_init = diagrams.Node.__init__, diagrams.Cluster.__init__

    def record_node(self: Any, *args: Any, **kwargs: Any) -> None:
        node_init(self, *args, **kwargs)
        current["nodes"].add(type(self))

    def record_cluster(self: Any, label: str = "cluster", *args: Any, **kwargs: Any) -> None:
        cluster_init(self, label, *args, **kwargs)
        current["clusters"].add(label)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(diagrams.Node, "__init__", record_node)
        mp.setattr(diagrams.Cluster, "__init__", record_cluster)
        mp.setattr(diagrams.Diagram, "render", lambda self: Path(self.filename).touch())
        for name in ("data_plane", "deployment_plane"):
            current = defaultdict(set)
            getattr(render, name)(tmp_path_factory.mktemp(f"dry-run-{name}"))
            seen[name] = dict(current)
    assert (diagrams.Node.__init__, diagrams.Cluster.__init__) == (node_init, cluster_init)
    return seen


def test_every_component_of_the_picture_is_listed_once(components: ModuleType) -> None:
    names = [c.name for c in components.COMPONENTS]

    assert len(names) == len(set(names)), "a component is listed twice"
    assert set(names) == PICTURE


def node_class(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", sorted(PICTURE))
def test_component_is_drawn(
    components: ModuleType, drawn: dict[str, dict[str, set[Any]]], name: str
) -> None:
    component = next(c for c in components.COMPONENTS if c.name == name)
    assert component.diagrams, f"{name}: in no diagram"

    for diagram in component.diagrams:
        if component.node == components.CLUSTER:
            assert name in drawn[diagram].get("clusters", set()), (
                f"{name}: no Cluster labelled {name!r} in {diagram}"
            )
        else:
            cls = node_class(component.node)
            assert cls in drawn[diagram].get("nodes", set()), (
                f"{name}: {component.node} is not instantiated in {diagram}"
            )


# --------------------------------------------------------------------------- what is deployed


def unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of block labels: drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def hcl_blocks(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, body) of every `resource "type" "name"` / `data "type" "name"` block."""
    for _, parsed in parsed_terraform():
        for block in parsed.get(kind, []):
            for block_type, named in block.items():
                for body in named.values():
                    yield unquote(block_type), body


@cache
def parsed_terraform() -> list[tuple[Path, dict[str, Any]]]:
    import hcl2

    if hasattr(hcl2, "START_LINE"):
        pytest.fail("`hcl2` is bc-python-hcl2 (checkov's fork); this test needs python-hcl2 8")
    parsed = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        with open(path, encoding="utf-8") as fh:
            parsed.append((path, hcl2.load(fh)))
    return parsed


def providers() -> set[str]:
    return {unquote(name) for _, parsed in parsed_terraform()
            for block in parsed.get("provider", []) for name in block}


@cache
def cfn_resource_types(template: str) -> set[str]:
    from cfnlint.decode import decode_str

    decoded, matches = decode_str((REPO / template).read_text(encoding="utf-8"))
    assert decoded is not None, f"{template} does not parse: {matches}"
    return {r.get("Type") for r in decoded.get("Resources", {}).values()}


def evidence_holds(components: ModuleType, evidence: Any) -> bool:
    if isinstance(evidence, components.TerraformResource):
        bodies = [body for t, body in hcl_blocks("resource") if t == evidence.type]
        if evidence.argument is None:
            return bool(bodies)
        return any(evidence.argument in body for body in bodies)
    if isinstance(evidence, components.TerraformData):
        return any(t == evidence.type for t, _ in hcl_blocks("data"))
    if isinstance(evidence, components.TerraformProvider):
        return evidence.name in providers()
    if isinstance(evidence, components.CloudFormationResource):
        return evidence.type in cfn_resource_types(evidence.template)
    if isinstance(evidence, components.CloudFormationTemplate):
        from cfnlint.decode import decode_str

        decoded, _ = decode_str((REPO / evidence.path).read_text(encoding="utf-8"))
        return (
            decoded is not None
            and str(decoded.get("AWSTemplateFormatVersion")) == "2010-09-09"
            and bool(decoded.get("Resources"))
        )
    if isinstance(evidence, components.Documented):
        path = REPO / evidence.path
        return path.is_file() and evidence.text in path.read_text(encoding="utf-8")
    raise AssertionError(f"unknown kind of evidence: {evidence!r}")


@pytest.mark.parametrize("name", sorted(PICTURE))
def test_component_is_really_deployed(components: ModuleType, name: str) -> None:
    component = next(c for c in components.COMPONENTS if c.name == name)
    assert component.evidence, f"{name}: no infrastructure evidence"

    missing = [e.describe() for e in component.evidence if not evidence_holds(components, e)]
    assert not missing, f"{name}: the infrastructure behind the box is gone: {missing}"


def test_the_evidence_check_can_fail(components: ModuleType) -> None:
    """The checks above are not vacuous: made-up infrastructure is reported missing."""
    assert not evidence_holds(components, components.TerraformResource("aws_redshift_cluster"))
    assert not evidence_holds(
        components, components.TerraformResource("aws_sfn_state_machine", "schedule_expression")
    )
    assert not evidence_holds(components, components.CloudFormationResource("AWS::RDS::DBInstance"))
    assert not evidence_holds(components, components.TerraformData("aws_eks_cluster"))
    assert not evidence_holds(components, components.Documented("cfn/README.md", "no such text"))


def test_event_rules_are_one_per_kind_of_trigger() -> None:
    rules = [body for t, body in hcl_blocks("resource") if t == "aws_cloudwatch_event_rule"]

    assert any("schedule_expression" in r for r in rules), "no time-based rule"
    assert any("event_pattern" in r for r in rules), "no event-based rule"


# --------------------------------------------------------------------------- README


def test_readme_names_both_pictures() -> None:
    readme = (ARCHITECTURE / "README.md").read_text(encoding="utf-8")

    assert "data_plane.png" in readme
    assert "deployment_plane.png" in readme


def test_readme_table_is_up_to_date(components: ModuleType) -> None:
    readme = (ARCHITECTURE / "README.md").read_text(encoding="utf-8")

    assert components.markdown_table() in readme, (
        "architecture/README.md's component table is stale: run `python architecture/components.py`"
    )
