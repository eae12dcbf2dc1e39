# The ingest orchestration: a Step Functions state machine (definition in ingest.asl.json, the
# same file the tests execute), the planner Lambda it calls first, and its two triggers: S3
# Object Created events on the raw bucket (event-based) and a schedule (time-based).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id  = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  region      = data.aws_region.current.region
  glue_job    = "arn:${local.partition}:glue:${local.region}:${local.account_id}:job/${var.glue_job_name}"
  lambda_name = "${var.name}-plan"
}

# Each role may be assumed by its one service, for this account only (confused-deputy guard).
data "aws_iam_policy_document" "assume" {
  for_each = {
    planner       = "lambda.amazonaws.com"
    state_machine = "states.amazonaws.com"
    events        = "events.amazonaws.com"
  }

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [each.value]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ----------------------------------------------------------------------------- planner Lambda

data "archive_file" "planner" {
  type        = "zip"
  source_file = "${path.module}/functions/plan_ingest.py"
  output_path = "${path.root}/.build/${local.lambda_name}.zip"
}

resource "aws_cloudwatch_log_group" "planner" {
  name              = "/aws/lambda/${local.lambda_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "planner" {
  name               = "${local.lambda_name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume["planner"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "planner" {
  statement {
    sid       = "ReadContracts"
    actions   = ["dynamodb:Scan"]
    resources = [var.contracts_table_arn]
  }

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.planner.arn}:*"]
  }

  statement {
    sid       = "DecryptEnvironmentAndTable"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  # X-Ray has no resource-level permissions: these two write-only actions take "*".
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "planner" {
  name   = "plan-ingest"
  role   = aws_iam_role.planner.id
  policy = data.aws_iam_policy_document.planner.json
}

resource "aws_lambda_function" "planner" {
  #checkov:skip=CKV_AWS_117: the function only calls the DynamoDB API; a VPC attachment adds ENIs and cold starts and no protection the role does not already give
  #checkov:skip=CKV_AWS_116: invoked synchronously by Step Functions, which retries and catches; a dead-letter queue would never receive anything
  #checkov:skip=CKV_AWS_272: the code is one file from this repository, deployed by Terraform from git; code signing needs a signing profile outside this stack
  function_name                  = local.lambda_name
  description                    = "Maps an ingest trigger (schedule or S3 object) to the datasets to run."
  role                           = aws_iam_role.planner.arn
  runtime                        = "python3.12"
  handler                        = "plan_ingest.handler"
  filename                       = data.archive_file.planner.output_path
  source_code_hash               = data.archive_file.planner.output_base64sha256
  timeout                        = 60
  memory_size                    = 256
  reserved_concurrent_executions = 20
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = {
      CONTRACTS_TABLE = var.contracts_table_name
      RAW_BUCKET      = var.raw_bucket_name
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.planner, aws_iam_role_policy.planner]
  tags       = var.tags
}

# ------------------------------------------------------------------------------ state machine

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "state_machine" {
  name               = "${var.name}-sfn-role"
  assume_role_policy = data.aws_iam_policy_document.assume["state_machine"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid       = "Plan"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.planner.arn, "${aws_lambda_function.planner.arn}:*"]
  }

  statement {
    sid       = "RunIngestJob"
    actions   = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
    resources = [local.glue_job]
  }

  statement {
    sid       = "ReadContract"
    actions   = ["dynamodb:GetItem"]
    resources = [var.contracts_table_arn]
  }

  statement {
    sid       = "RecordFailure"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.runs_table_arn]
  }

  statement {
    sid       = "Alert"
    actions   = ["sns:Publish"]
    resources = [var.sns_topic_arn]
  }

  statement {
    sid       = "EncryptedTopicTablesAndState"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  # Vended log delivery and X-Ray do not support resource-level permissions.
  statement {
    sid = "LogDeliveryAndTracing"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
      "xray:GetSamplingRules", "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "ingest-orchestration"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}

resource "aws_sfn_state_machine" "this" {
  name     = var.name
  role_arn = aws_iam_role.state_machine.arn
  type     = "STANDARD"
  definition = templatefile("${path.module}/ingest.asl.json", {
    planner_function_arn        = aws_lambda_function.planner.arn
    contracts_table             = var.contracts_table_name
    runs_table                  = var.runs_table_name
    glue_job_name               = var.glue_job_name
    sns_topic_arn               = var.sns_topic_arn
    max_concurrency             = var.max_concurrency
    glue_retry_interval_seconds = var.glue_retry_interval_seconds
    glue_task_timeout_seconds   = var.glue_task_timeout_seconds
    execution_timeout_seconds   = var.execution_timeout_seconds
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = var.log_level
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = var.kms_key_arn
    kms_data_key_reuse_period_seconds = 300
  }

  depends_on = [aws_iam_role_policy.state_machine]
  tags       = var.tags
}

# ----------------------------------------------------------------------------------- triggers

resource "aws_iam_role" "events" {
  name               = "${var.name}-events-role"
  assume_role_policy = data.aws_iam_policy_document.assume["events"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "StartIngest"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.this.arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "start-ingest"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

# Event-based: every new object in the raw bucket (the bucket sends its events to EventBridge).
resource "aws_cloudwatch_event_rule" "object_created" {
  name        = "${var.name}-object-created"
  description = "A file arrived in the raw zone: ingest the datasets it belongs to."
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.raw_bucket_name] }
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "object_created" {
  rule     = aws_cloudwatch_event_rule.object_created.name
  arn      = aws_sfn_state_machine.this.arn
  role_arn = aws_iam_role.events.arn

  input_transformer {
    input_paths = {
      bucket = "$.detail.bucket.name"
      key    = "$.detail.object.key"
    }
    input_template = "{\"trigger\": \"s3\", \"bucket\": <bucket>, \"object_key\": <key>}"
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }
}

# Time-based: the nightly safety net that also picks up files an event-triggered run left.
resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.name}-schedule"
  description         = "Scheduled ingest of every enabled dataset."
  schedule_expression = var.schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  rule     = aws_cloudwatch_event_rule.schedule.name
  arn      = aws_sfn_state_machine.this.arn
  role_arn = aws_iam_role.events.arn
  input    = jsonencode({ trigger = "schedule" })

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }
}
