"""The architecture diagrams of the data lake, drawn with the `diagrams` library (Graphviz).

Two pictures, one function each, with fixed output names:

* ``data_plane.png``: how files travel from the on-premise site into the lake (with the JDBC path
  to the on-premise database, in place but not read by the ingest job), and what runs, stores,
  watches and protects the ingest on AWS;
* ``deployment_plane.png``: how the CloudFormation seed creates the CodeBuild project that runs
  the Terraform which deploys the data plane.

Run ``python architecture/render.py`` (or ``make diagrams``) to regenerate both into this folder.
Every box that draws a component of the challenge's picture stands for infrastructure that
``terraform/`` or ``cfn/seed.yaml`` creates, except the VPC with its private subnets: they are
expected to exist; Terraform looks them up and the seed is given them as parameters. The table in
``components.py`` says where, and ``tests/test_architecture.py`` keeps the two in step. The other
boxes marked "existing" are created by neither and are expected to exist as well: the Site-to-Site
VPN or Direct Connect with its customer gateway, and the Git repository; so are the on-premise
site's systems.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from diagrams import Cluster, Diagram, Edge
from diagrams.aws.analytics import Athena, Glue, GlueDataCatalog
from diagrams.aws.compute import Lambda
from diagrams.aws.database import (
    Dynamodb,
    DynamodbAttributes,
    DynamodbItems,
    DynamodbTable,
)
from diagrams.aws.devtools import Codebuild
from diagrams.aws.integration import SNS, StepFunctions
from diagrams.aws.management import (
    Cloudformation,
    CloudformationChangeSet,
    CloudformationStack,
    CloudformationTemplate,
    Cloudwatch,
    CloudwatchAlarm,
    CloudwatchEventEventBased,
    CloudwatchEventTimeBased,
    CloudwatchLogs,
    CloudwatchRule,
    SystemsManagerParameterStore,
)
from diagrams.aws.network import (
    Endpoint,
    SiteToSiteVpn,
    VPCCustomerGateway,
    VPCElasticNetworkInterface,
)
from diagrams.aws.security import IAM, KMS, SecretsManager
from diagrams.aws.storage import S3
from diagrams.generic.database import SQL
from diagrams.onprem.compute import Server
from diagrams.onprem.iac import Terraform
from diagrams.onprem.vcs import Git

ARCHITECTURE_DIR = Path(__file__).resolve().parent

#: Output names (without ".png"), fixed so that a re-render replaces the committed pictures.
DATA_PLANE = "data_plane"
DEPLOYMENT_PLANE = "deployment_plane"

# --------------------------------------------------------------------------- look

_GRAPH = {
    "fontsize": "26",
    "fontname": "Helvetica",
    "labelloc": "t",
    "pad": "0.6",
    "splines": "spline",
    "nodesep": "0.45",
    "ranksep": "0.9",
    "newrank": "true",
}
_NODE = {"fontsize": "14", "fontname": "Helvetica"}
_EDGE = {"fontsize": "13", "fontname": "Helvetica", "color": "#545B64", "fontcolor": "#232F3E"}

# The boundary styles of the AWS icon set: AWS Cloud black, VPC green, Step Functions pink.
_AWS_CLOUD = {"pencolor": "#232F3E", "bgcolor": "white", "penwidth": "2", "fontsize": "18"}
_VPC = {"pencolor": "#248814", "bgcolor": "#F2F8F0", "penwidth": "2", "fontsize": "16",
        "fontcolor": "#248814"}
_SUBNET = {"pencolor": "#248814", "bgcolor": "#E6F2E2", "style": "dashed", "fontsize": "13",
           "fontcolor": "#248814"}
_WORKFLOW = {"pencolor": "#CD2264", "bgcolor": "#FCF1F5", "penwidth": "2", "fontsize": "16",
             "fontcolor": "#CD2264"}
_ON_PREMISE = {"pencolor": "#7D8998", "bgcolor": "#F4F4F4", "penwidth": "2", "fontsize": "18",
               "style": "dashed"}
# Groups inside the AWS Cloud that are no network boundary: a thin grey line, no fill.
_GROUP = {"pencolor": "#AAB7B8", "bgcolor": "transparent", "style": "rounded", "fontsize": "13",
          "fontcolor": "#545B64"}


def _data_flow(label: str = "", **attrs: str) -> Edge:
    """The path of the data itself."""
    return Edge(label=label, color="#1A73E8", penwidth="2.2", **attrs)


def _control(label: str = "") -> Edge:
    """Triggers, calls and orchestration."""
    return Edge(label=label, color="#CD2264", penwidth="1.6")


def _main(label: str = "", **attrs: str) -> Edge:
    """The main line of a diagram: heavy, so that Graphviz keeps it straight."""
    return Edge(label=label, color="#CD2264", penwidth="2.2", weight="20", **attrs)


def _state(label: str = "") -> Edge:
    """Reads and writes of state, catalog and settings."""
    return Edge(label=label, color="#545B64", style="dashed")


def _unused(label: str = "") -> Edge:
    """A permission that is in place but that the ingest job does not use: light and dashed."""
    return Edge(label=label, color="#AAB7B8", fontcolor="#7D8998", style="dashed")


def _alert(label: str = "") -> Edge:
    """Metrics and alerts."""
    return Edge(label=label, color="#D13212", style="dashed")


def _assumed() -> Edge:
    """An IAM role beside the principal that assumes it (same rank, so it sits next to it)."""
    return Edge(color="#7D8998", style="dotted", arrowhead="none", minlen="0")


def _beside(label: str = "", color: str = "#248814", **attrs: str) -> Edge:
    """An edge between two nodes drawn one above the other (same rank)."""
    return Edge(label=label, color=color, penwidth="1.6", minlen="0", **attrs)


def _up(label: str = "", color: str = "#545B64") -> Edge:
    """From a node up its column to a node above it (same rank). The label is an external one,
    placed after the layout, so that it does not move the nodes."""
    return Edge(xlabel=label, color=color, penwidth="1.6", minlen="0", style="dashed")


def _hidden() -> Edge:
    """No line: only keeps a node in its column."""
    return Edge(style="invis")


# --------------------------------------------------------------------------- diagrams


def data_plane(out_dir: Path) -> Path:
    """Draw how data crosses from the on-premise site into the lake, and the ingest around it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with Diagram(
        "Data plane: ingest from the on-premise site into the S3 data lake",
        filename=str(out_dir / DATA_PLANE),
        show=False,
        direction="LR",
        graph_attr=_GRAPH,
        node_attr=_NODE,
        edge_attr=_EDGE,
    ):
        with Cluster("On-premise site", graph_attr=_ON_PREMISE):
            exports = Server("ERP / CRM / plant\nfile exports\n(upload agent)")
            onprem_db = SQL("on-premise\ndatabase")
            customer_gw = VPCCustomerGateway("customer gateway\n(VPN router,\nexisting)")

        with Cluster("AWS Cloud", graph_attr=_AWS_CLOUD):
            raw = S3("S3 raw zone\n(files as delivered)")

            with Cluster("EventBridge", graph_attr=_GROUP):
                on_object = CloudwatchEventEventBased("event-based:\nS3 Object Created")
                nightly = CloudwatchEventTimeBased("time-based:\ncron(0 2 * * ? *)")
                events_role = IAM("EventBridge role\n(targets)")

            state_machine = StepFunctions("Step Functions\ningest state machine")
            sfn_role = IAM("Step Functions role")
            lambda_role = IAM("Lambda role")
            glue_role = IAM("Glue job role")
            scripts = S3("S3 scripts\n(job script + zip)")

            with Cluster("AWS Step Functions workflow", graph_attr=_WORKFLOW):
                planner = Lambda("planner + claim\nLambdas (which\ndatasets; skip,\nwait or lock)")
                fan_out = StepFunctions("Map: one branch\nper dataset")
                ingest_job = Glue("Glue ingest job\n(PySpark, Glue 5.1)")

            with Cluster("VPC", graph_attr=_VPC):
                vpn = SiteToSiteVpn("Site-to-Site\nVPN / Direct\nConnect\n(existing)")
                with Cluster("private subnets (existing)", graph_attr=_SUBNET):
                    job_enis = VPCElasticNetworkInterface("ENIs of the Glue\nNETWORK connection\n+ security group")
                    interface_eps = Endpoint(
                        "interface endpoints\nglue, logs, metrics,\nkms, sts (secrets\nwith JDBC)"
                    )
                gateway_eps = Endpoint("gateway endpoints\nS3 + DynamoDB")

            with Cluster("Lake zones", graph_attr=_GROUP):
                curated = S3("S3 curated\n(Parquet tables)")
                quarantine = S3("S3 quarantine\n(rejected rows)")

            with Cluster("DynamoDB (on-demand, PITR)", graph_attr=_GROUP):
                contracts = DynamodbTable("contracts:\ntable structures\n& job settings")
                contract_items = DynamodbItems("Items: one\nper dataset")
                contract_attrs = DynamodbAttributes("Attributes:\ndataset_id, enabled,\nversion,\ndocument")
                ledger = Dynamodb("file ledger\n(key + ETag)")
                runs = Dynamodb("runs + dataset lock")

            catalog = GlueDataCatalog("Glue Data Catalog\n(tables, partitions)")
            athena = Athena("Athena workgroup")
            results = S3("S3 athena-results")

            with Cluster("Monitoring and alerts", graph_attr=_GROUP):
                metrics = Cloudwatch("CloudWatch\nmetrics + logs\nDataLake/Ingest")
                alarms = CloudwatchAlarm("alarms: failed runs\nand files, backlog,\nquarantine ratio")
                job_failed = CloudwatchRule("rule: Glue job\nFAILED / TIMEOUT /\nERROR")
                alerts = SNS("SNS alerts topic")

            with Cluster("Security and settings", graph_attr=_GROUP):
                db_secret = SecretsManager("Secrets Manager\non-prem DB\ncredentials")
                settings = SystemsManagerParameterStore("Parameter Store\nenvironment\nsettings")
                lake_key = KMS("lake KMS key\n(every store but the\naccess-log bucket:\nSSE-S3)")

        # How the data crosses into AWS; the on-premise site stays one column at the left.
        exports >> Edge(style="invis", minlen="0", weight="100") >> customer_gw
        exports >> _data_flow("HTTPS (TLS) PutObject\nto the regional endpoint") >> raw
        onprem_db >> _beside("JDBC (TLS)", color="#1A73E8", weight="100") >> customer_gw
        customer_gw >> Edge(label="IPsec / private line", color="#1A73E8", penwidth="2.2",
                            weight="10") >> vpn
        vpn >> _data_flow("to on-prem DB") >> job_enis

        # What starts a run.
        raw >> _control("Object Created") >> on_object
        raw >> _hidden() >> nightly
        on_object >> _control("StartExecution") >> state_machine
        nightly >> _control("StartExecution") >> state_machine
        state_machine >> _control("1 plan") >> planner
        planner >> _control("2 datasets") >> fan_out
        fan_out >> _control("3 startJobRun.sync") >> ingest_job

        # The ingest itself.
        ingest_job >> _beside("runs in") >> job_enis
        job_enis >> Edge(color="#248814") >> gateway_eps
        job_enis >> Edge(color="#248814") >> interface_eps
        scripts >> _state("script") >> ingest_job
        raw >> _data_flow("new files") >> ingest_job
        ingest_job >> _data_flow("Parquet") >> curated
        ingest_job >> _data_flow("bad rows") >> quarantine

        # State, catalog and secrets. The JDBC connection names the secret for code that reads the
        # database; the ingest job is attached to the NETWORK connection only and never reads it.
        planner >> _state("scan contracts") >> contracts
        planner >> _state("claim: file in ledger?\ntake the lock") >> runs
        fan_out >> _state("get contract") >> contracts
        ingest_job >> _state("contract") >> contracts
        contracts - _state() - contract_items - _state() - contract_attrs
        ingest_job >> _state("ledger") >> ledger
        ingest_job >> _state("run record") >> runs
        ingest_job >> _state("add partitions") >> catalog
        job_enis >> _unused("DB credentials of the\nJDBC connection: not\nread by the ingest job") >> db_secret
        db_secret >> _hidden() >> lake_key >> _hidden() >> settings

        # Query.
        catalog >> _state("schema, partitions") >> athena
        curated >> _data_flow("SQL reads") >> athena
        athena >> _data_flow("results") >> results

        # Metrics and alerts.
        ingest_job >> _alert("row counts") >> metrics
        metrics >> _alert() >> alarms >> _alert("notify") >> alerts
        ingest_job >> _alert("state change") >> job_failed >> _alert() >> alerts
        fan_out >> _alert("dataset failed") >> alerts

        # Who is who: each role beside the principal that assumes it.
        events_role - _assumed() - on_object
        sfn_role - _assumed() - state_machine
        lambda_role - _assumed() - planner
        glue_role - _assumed() - ingest_job
        glue_role >> Edge(style="invis", minlen="0") >> job_enis
    return out_dir / f"{DATA_PLANE}.png"


def deployment_plane(out_dir: Path) -> Path:
    """Draw how the CloudFormation seed and its CodeBuild project deploy the data plane."""
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_label = "created by the seed stack (cfn/seed.yaml)"
    lake_label = "data-plane stack (terraform/)"
    with Diagram(
        "Deployment plane: CloudFormation seed, CodeBuild, Terraform",
        filename=str(out_dir / DEPLOYMENT_PLANE),
        show=False,
        direction="LR",
        graph_attr={**_GRAPH, "compound": "true"},
        node_attr=_NODE,
        edge_attr=_EDGE,
    ):
        repo = Git("Git repository (existing)\nterraform/, cfn/,\nglue_jobs/ (PySpark)")

        with Cluster("AWS Cloud", graph_attr=_AWS_CLOUD):
            template = CloudformationTemplate("Template\ncfn/seed.yaml")
            cloudformation = Cloudformation("AWS CloudFormation")
            change_set = CloudformationChangeSet("Change set\n(reviewed)")
            stack = CloudformationStack("Stack\n<project>-<env>-seed")

            # The VPC and its subnets are inputs of the seed (VpcID, PrivateSubnetIDs), not its
            # resources: the project the seed creates runs in them. The subnets' label sits at the
            # bottom, out of the way of the edges that leave the project upwards.
            with Cluster("VPC", graph_attr=_VPC), \
                    Cluster("private subnets (existing)",
                            graph_attr={**_SUBNET, "margin": "20", "labelloc": "b"}):
                codebuild = Codebuild("CodeBuild project\n(no ingress)")
                terraform = Terraform("terraform init /\nplan / apply")

            with Cluster(seed_label, graph_attr=_GROUP):
                build_role = IAM("CodeBuild\nservice role")
                repo_settings = SystemsManagerParameterStore("Parameter Store\nrepo URL, branch,\n"
                                                             "dirs, TF version")
                ssh_key = SecretsManager("Secrets Manager\nSSH deploy key")
                build_logs = CloudwatchLogs("build log group\n(365 days)")
                seed_key = KMS("seed KMS key")
                state_bucket = S3("Terraform\nstate bucket")
                lock_table = DynamodbTable("<project>-<env>-\ntfstate-lock\n(lock table)")

            with Cluster(lake_label, graph_attr=_GROUP):
                lake_buckets = S3("S3 zones")
                lake_job = Glue("Glue ingest job\n+ connections")
                lake_tables = Dynamodb("DynamoDB\ncontracts,\nledger, runs")
                lake_workflow = StepFunctions("state machine\n+ EventBridge\nrules")
                lake_query = Athena("Athena\nworkgroup +\nGlue catalog")
                lake_watch = Cloudwatch("CloudWatch\nalarms + SNS")

        # The main line, kept straight by its weight.
        repo >> _main("cfn/seed.yaml") >> template
        template >> _main("create-change-set") >> cloudformation
        cloudformation >> _main() >> change_set
        change_set >> _main("execute-change-set") >> stack
        stack >> _main("creates") >> codebuild
        # The seed's other resources: the edge ends at their box, and takes no part in the ranking.
        stack >> Edge(label="creates", color="#CD2264", penwidth="1.6", constraint="false",
                      lhead=f"cluster_{seed_label}") >> build_role
        codebuild >> _main("runs") >> terraform
        terraform >> _main("deploys", lhead=f"cluster_{lake_label}") >> lake_tables

        # What the build uses, drawn in the columns above the project and Terraform; the clone
        # passes above the main line, inside the AWS Cloud.
        repo >> _data_flow("git clone over SSH", tailport="ne", headport="nw") >> codebuild
        codebuild - _assumed() - build_role
        codebuild >> _up("settings") >> repo_settings
        codebuild >> _up("SSH key") >> ssh_key
        codebuild >> _up("logs", color="#D13212") >> build_logs
        terraform >> _up("state") >> state_bucket
        terraform >> _up("lock") >> lock_table
        terraform >> Edge(style="invis", minlen="0") >> seed_key

        # Two columns of three inside the data-plane stack.
        terraform >> _hidden() >> [lake_buckets, lake_job]
        lake_buckets >> _hidden() >> lake_workflow
        lake_job >> _hidden() >> lake_query
        lake_tables >> _hidden() >> lake_watch
    return out_dir / f"{DEPLOYMENT_PLANE}.png"


def render_all(out_dir: Path = ARCHITECTURE_DIR) -> list[Path]:
    """Render every diagram into ``out_dir`` and return the PNG paths."""
    return [data_plane(out_dir), deployment_plane(out_dir)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="architecture/render.py", description="Render the architecture diagrams.")
    parser.add_argument("out_dir", nargs="?", type=Path, default=ARCHITECTURE_DIR,
                        help=f"folder for the PNG files (default: {ARCHITECTURE_DIR.name}/)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for png in render_all(args.out_dir):
        print(f"wrote {png} ({png.stat().st_size // 1024} KiB)")
    print(f"rendered in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
