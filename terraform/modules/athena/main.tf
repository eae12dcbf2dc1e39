# The Athena workgroup analysts query the curated zone with. Its settings are enforced, so a
# client cannot send results elsewhere, unencrypted, or scan without a limit.

resource "aws_athena_workgroup" "this" {
  name          = var.name
  description   = "Queries over the curated zone of the data lake"
  state         = "ENABLED"
  force_destroy = var.enable_force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = var.enable_cloudwatch_metrics
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query
    requester_pays_enabled             = false

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${var.results_bucket_name}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = var.tags
}

# ------------------------------------------------------------------ who may query

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  glue_arn = "arn:${data.aws_partition.current.partition}:glue:${var.region}:${data.aws_caller_identity.current.account_id}"
  readable = {
    for zone, bucket in var.readable_bucket_names : zone => "arn:${data.aws_partition.current.partition}:s3:::${bucket}"
  }
  results_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.results_bucket_name}"
}

# What an analyst needs to query the lake through this workgroup, and nothing more: run queries
# in this workgroup only, read the catalog of the lake's databases, read the objects of the
# buckets in readable_bucket_names, write and read results under results/, and use the lake key
# for both. Attach it to the analysts' group, role or permission set; no principal of this
# stack uses it.
data "aws_iam_policy_document" "query" {
  statement {
    sid = "QueryInThisWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryResultsStream",
      "athena:ListQueryExecutions",
      "athena:BatchGetQueryExecution",
      "athena:GetWorkGroup",
    ]
    resources = [aws_athena_workgroup.this.arn]
  }

  statement {
    sid = "ReadLakeCatalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = concat(
      # "default": Athena sessions start in it; queries are reported to fail without it (not checked on AWS)
      ["${local.glue_arn}:catalog", "${local.glue_arn}:database/default"],
      [for d in var.glue_database_names : "${local.glue_arn}:database/${d}"],
      [for d in var.glue_database_names : "${local.glue_arn}:table/${d}/*"],
    )
  }

  statement {
    sid       = "ListLakeAndResultBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = concat(values(local.readable), [local.results_arn])
  }

  statement {
    sid       = "ReadLakeObjects"
    actions   = ["s3:GetObject"]
    resources = [for arn in values(local.readable) : "${arn}/*"]
  }

  statement {
    sid       = "WriteAndReadResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.results_arn}/results/*"]
  }

  # Only through the services that use the key on the analyst's behalf: S3 (SSE-KMS objects and
  # query results), Athena, and Glue (the Data Catalog, when enable_catalog_encryption encrypts it
  # with this key). All three support kms:ViaService (AWS KMS, "kms:ViaService"). The key also
  # protects the state tables, the topic, the secret and the logs, which analysts do not read.
  statement {
    sid       = "UseTheLakeKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com", "athena.${var.region}.amazonaws.com", "glue.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "query" {
  name        = "${var.name}-athena-query"
  description = "Query the data lake through the ${var.name} Athena workgroup (read only, results in the workgroup's location)."
  policy      = data.aws_iam_policy_document.query.json
  tags        = var.tags
}
