# The ingest job on AWS Glue 5.1: the job, its least-privilege role, its encryption settings,
# and its way into the VPC (a NETWORK connection) and to the on-premise database (a JDBC
# connection whose credentials live in Secrets Manager).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_subnet" "this" {
  id = var.subnet_id
}

# Gateway endpoints route S3 and DynamoDB traffic to these AWS-managed prefix lists; the
# security group must allow egress to them.
data "aws_prefix_list" "s3" {
  name = "com.amazonaws.${var.region}.s3"
}

data "aws_prefix_list" "dynamodb" {
  name = "com.amazonaws.${var.region}.dynamodb"
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  bucket_arns = { for zone, b in var.bucket_names : zone => "arn:${local.partition}:s3:::${b}" }
  temp_path   = trimsuffix(trimprefix(var.temp_dir, "s3://"), "/")

  catalog_arn  = "arn:${local.partition}:glue:${var.region}:${local.account_id}:catalog"
  database_arn = [for d in var.glue_database_names : "arn:${local.partition}:glue:${var.region}:${local.account_id}:database/${d}"]
  table_arns   = [for d in var.glue_database_names : "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${d}/*"]

  log_group_arn = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws-glue/*"
  eni_arn       = "arn:${local.partition}:ec2:${var.region}:${local.account_id}:network-interface/*"
  vpc_arn       = "arn:${local.partition}:ec2:${var.region}:${local.account_id}:vpc/${var.vpc_id}"

  connection_names = concat(
    [aws_glue_connection.network.name],
    [for c in aws_glue_connection.onprem_db : c.name],
  )

  # Arguments lake_ingest._args parses (underscores) next to Glue's own (dashes, TempDir).
  # --dataset_id and --run_id are not here: the state machine passes them on every run.
  job_arguments = {
    "--raw_uri"            = "s3://${var.bucket_names.raw}"
    "--curated_uri"        = "s3://${var.bucket_names.curated}"
    "--quarantine_uri"     = "s3://${var.bucket_names.quarantine}"
    "--contracts_table"    = var.dynamodb_tables.contracts.name
    "--ledger_table"       = var.dynamodb_tables.ledger.name
    "--runs_table"         = var.dynamodb_tables.runs.name
    "--metrics_namespace"  = var.metrics_namespace
    "--lock_lease_seconds" = tostring(var.timeout_minutes * 60)
    "--max_files_per_run"  = tostring(var.max_files_per_run)
    "--aws_region"         = var.region # boto3 reads AWS_DEFAULT_REGION, which a Glue job is not documented to set
  }
  glue_arguments = {
    "--extra-py-files"               = var.extra_py_files
    "--TempDir"                      = var.temp_dir
    "--enable-auto-scaling"          = tostring(var.enable_auto_scaling)
    "--job-bookmark-option"          = "job-bookmark-disable" # the job keeps its own file ledger
    "--enable-metrics"               = "true"
    "--enable-observability-metrics" = "true"
    # Glue 5 logs in real time to <prefix>/error (driver, Spark, the job's logger) and
    # <prefix>/output (stdout, stderr); the continuous-logging arguments are for Glue 4 and earlier.
    "--custom-logGroup-prefix" = local.log_group_prefix
    # Glue 5.1 reaches S3 through S3A, whose region is us-east-2 unless set: in this VPC without
    # NAT, where only the region's S3 gateway endpoint leads to S3, writes would time out.
    "--conf" = "spark.hadoop.fs.s3a.endpoint.region=${var.region}"
  }
  log_group_prefix = "/aws-glue/jobs/${var.name}"
}

# --------------------------------------------------------------------------- logs and encryption

# Created here, so that they carry the retention and the key (Glue would create them without).
resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(["error", "output"])

  name              = "${local.log_group_prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_glue_security_configuration" "this" {
  name = "${var.name}-security"

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = var.kms_key_arn
    }

    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = var.kms_key_arn
    }

    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = var.kms_key_arn
    }
  }
}

# --------------------------------------------------------------------------- network

# The whole firewall of the job's ENIs in one place. Glue requires the self-referencing rule:
# the driver and the executors talk to each other over any TCP port. name_prefix, not name: a
# replacement (create_before_destroy) creates the new group while the old one, with its name,
# still exists.
resource "aws_security_group" "this" {
  name_prefix = "${var.name}-glue-"
  description = "Glue ingest job ENIs: talk to each other, the VPC endpoints and the on-premise database only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-glue" })

  ingress {
    description = "Glue driver and executors among themselves"
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    self        = true
  }

  egress {
    description = "Glue driver and executors among themselves"
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    self        = true
  }

  egress {
    description = "HTTPS to the interface VPC endpoints (Glue, Logs, CloudWatch, KMS, Secrets Manager, STS)"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description     = "HTTPS to S3 and DynamoDB through their gateway endpoints"
    protocol        = "tcp"
    from_port       = 443
    to_port         = 443
    prefix_list_ids = [data.aws_prefix_list.s3.id, data.aws_prefix_list.dynamodb.id]
  }

  dynamic "egress" {
    for_each = length(var.on_premise_cidrs) > 0 ? [var.on_premise_cidrs] : []
    content {
      description = "On-premise database (VPN / Direct Connect)"
      protocol    = "tcp"
      from_port   = var.onprem_db_port
      to_port     = var.onprem_db_port
      cidr_blocks = egress.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  #checkov:skip=CKV2_AWS_5: Attached to the job's ENIs through aws_glue_connection (physical_connection_requirements), a resource type this graph check does not follow.
}

resource "aws_glue_connection" "network" {
  name            = "${var.name}-network"
  description     = "Runs the ingest job inside the VPC (private subnet, no internet route needed)"
  connection_type = "NETWORK"

  physical_connection_requirements {
    availability_zone      = data.aws_subnet.this.availability_zone
    subnet_id              = var.subnet_id
    security_group_id_list = [aws_security_group.this.id]
  }

  tags = var.tags
}

# --------------------------------------------------------------------------- on-premise database

resource "aws_secretsmanager_secret" "onprem_db" {
  count = var.create_jdbc_connection ? 1 : 0

  name                    = "${var.name}/onprem-db"
  description             = "Credentials of the on-premise database as {\"username\": ..., \"password\": ...}; the value is put outside Terraform, so it never lands in the state."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags

  #checkov:skip=CKV2_AWS_57: The credentials belong to the on-premise database; its team rotates them there and updates the secret. A rotation Lambda would need admin rights on that database.
}

resource "aws_glue_connection" "onprem_db" {
  count = var.create_jdbc_connection ? 1 : 0

  name            = "${var.name}-onprem-db"
  description     = "JDBC connection to the on-premise database, credentials from Secrets Manager"
  connection_type = "JDBC"

  connection_properties = {
    JDBC_CONNECTION_URL = var.jdbc_url
    JDBC_ENFORCE_SSL    = "true"
    SECRET_ID           = aws_secretsmanager_secret.onprem_db[0].name
  }

  physical_connection_requirements {
    availability_zone      = data.aws_subnet.this.availability_zone
    subnet_id              = var.subnet_id
    security_group_id_list = [aws_security_group.this.id]
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.jdbc_url != ""
      error_message = "create_jdbc_connection needs jdbc_url."
    }
  }
}

# --------------------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-glue"
  description        = "Runs the ${var.name} Glue job"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "job" {
  # ---- S3: raw is read only; curated and quarantine are written (and orphans deleted).
  statement {
    sid     = "ListLakeBuckets"
    actions = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [
      local.bucket_arns.raw,
      local.bucket_arns.curated,
      local.bucket_arns.quarantine,
      local.bucket_arns.scripts,
    ]
  }

  statement {
    sid       = "ReadRaw"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns.raw}/*"]
  }

  statement {
    sid = "WriteCuratedAndQuarantine"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.bucket_arns.curated}/*", "${local.bucket_arns.quarantine}/*"]
  }

  statement {
    sid       = "ReadScripts"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns.scripts}/*"]
  }

  statement {
    sid       = "GlueTempDir"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["arn:${local.partition}:s3:::${local.temp_path}/*"]
  }

  # ---- DynamoDB: contracts are read; the ledger and the runs (with the lock) are written.
  statement {
    sid       = "ReadContracts"
    actions   = ["dynamodb:GetItem"]
    resources = [var.dynamodb_tables.contracts.arn]
  }

  statement {
    sid = "WriteLedgerAndRuns"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ]
    resources = [var.dynamodb_tables.ledger.arn, var.dynamodb_tables.runs.arn]
  }

  # ---- Glue Data Catalog: the job creates and evolves its tables and registers partitions,
  # all through boto3 (Spark does not use the catalog: the job writes paths, not tables).
  # tests/test_iam_policies.py checks these actions against the calls the job makes.
  statement {
    sid = "LakeCatalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:BatchCreatePartition",
    ]
    resources = concat([local.catalog_arn], local.database_arn, local.table_arns)
  }

  # The network connection of the job, and the JDBC connection for code that reads the
  # on-premise database (glueContext.extract_jdbc_conf) with the secret below.
  statement {
    sid     = "JobConnections"
    actions = ["glue:GetConnection"]
    resources = concat(
      [local.catalog_arn],
      [for n in local.connection_names : "arn:${local.partition}:glue:${var.region}:${local.account_id}:connection/${n}"],
    )
  }

  # ---- CloudWatch metrics. PutMetricData has no resource-level permissions, so the resource
  # must be "*"; the namespace condition limits it to the job's own metrics and to Glue's
  # job and observability metrics (--enable-metrics, --enable-observability-metrics).
  statement {
    sid       = "PutJobMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace, "Glue"]
    }
  }

  # ---- Logs: Glue's log groups (/aws-glue/...), encrypted with the key of the security configuration.
  statement {
    sid = "GlueLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:AssociateKmsKey",
    ]
    resources = [local.log_group_arn, "${local.log_group_arn}:log-stream:*"]
  }

  # ---- KMS: S3 objects, log events, bookmarks and the secret are encrypted with the lake key.
  statement {
    sid       = "UseLakeKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  # ---- VPC: Glue puts ENIs of the job into the subnet of the connection. The Describe* calls
  # have no resource-level permissions, so their resource must be "*"; they only read metadata.
  statement {
    sid = "DescribeVpcForGlue"
    actions = [
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeRouteTables",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcEndpoints",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "DescribeJobVpc"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = [local.vpc_arn]
  }

  statement {
    sid     = "CreateJobEnis"
    actions = ["ec2:CreateNetworkInterface"]
    resources = [
      local.eni_arn,
      data.aws_subnet.this.arn,
      aws_security_group.this.arn,
    ]
  }

  # DeleteNetworkInterface takes the network-interface resource only; the ec2:Vpc condition key
  # (the VPC's ARN; Service Authorization Reference, Amazon EC2) confines it to the job's VPC.
  statement {
    sid       = "DeleteJobEnis"
    actions   = ["ec2:DeleteNetworkInterface"]
    resources = [local.eni_arn]

    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = [local.vpc_arn]
    }
  }

  statement {
    sid       = "TagJobEnis"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = [local.eni_arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["aws-glue-service-resource"]
    }
  }

  # ---- Secrets Manager: only the on-premise database secret, when it exists.
  dynamic "statement" {
    for_each = aws_secretsmanager_secret.onprem_db
    content {
      sid       = "ReadOnPremDbSecret"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = [statement.value.arn]
    }
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "ingest-job"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.job.json
}

# --------------------------------------------------------------------------- the job

resource "aws_glue_job" "this" {
  name                   = var.name
  description            = "Config-driven ingest of one dataset per run (contracts in DynamoDB); started by Step Functions"
  role_arn               = aws_iam_role.this.arn
  glue_version           = "5.1"
  worker_type            = var.worker_type
  number_of_workers      = var.number_of_workers
  execution_class        = var.execution_class
  timeout                = var.timeout_minutes
  max_retries            = 0 # a failed run is recorded and alerted; the next trigger reruns it (runs are idempotent)
  security_configuration = aws_glue_security_configuration.this.name
  connections            = [aws_glue_connection.network.name] # the JDBC connection is for code that reads the database

  # A run that the account's quotas (concurrent runs, DPUs) do not admit waits instead of failing.
  job_run_queuing_enabled = true

  command {
    name            = "glueetl"
    script_location = var.script_location
    python_version  = "3"
  }

  execution_property {
    max_concurrent_runs = var.max_concurrent_runs
  }

  default_arguments = merge(local.glue_arguments, local.job_arguments)

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.execution_class == "STANDARD" || contains(["G.1X", "G.2X"], var.worker_type)
      error_message = "The FLEX execution class runs G.1X and G.2X workers only."
    }

    precondition {
      condition     = startswith(local.temp_path, "${var.bucket_names.scripts}/")
      error_message = "temp_dir must be a prefix of the scripts bucket (s3://<scripts bucket>/<prefix>/)."
    }
  }

  depends_on = [aws_iam_role_policy.job]
}
