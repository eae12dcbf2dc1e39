# The ingest orchestration: a Step Functions state machine (definition in ingest.asl.json, the
# same file the tests execute), the planner Lambda it calls first, and its two triggers: S3
# Object Created events on the raw bucket (event-based) and a schedule (time-based).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.region
  glue_job   = "arn:${local.partition}:glue:${local.region}:${local.account_id}:job/${var.glue_job_name}"
  # Built, not read from the resource: the state machine depends on its role's policy.
  state_machine_arn = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${var.name}"
  functions = {
    plan = {
      module      = "plan_ingest"
      description = "Maps an ingest trigger (schedule or S3 object) to the datasets to run."
      environment = { CONTRACTS_TABLE = var.contracts_table_name, RAW_BUCKET = var.raw_bucket_name }
    }
    claim = {
      module      = "claim_dataset"
      description = "Before a Glue run: skips a file already read, or takes or waits for the dataset's lock."
      environment = {
        LEDGER_TABLE  = var.ledger_table_name
        RUNS_TABLE    = var.runs_table_name
        LEASE_SECONDS = tostring(var.glue_task_timeout_seconds)
      }
    }
  }
  lambda_arns = [for f in aws_lambda_function.this : f.arn]
}

# Each role may be assumed by its one service, for this account only (confused-deputy guard).
data "aws_iam_policy_document" "assume" {
  for_each = {
    lambda        = "lambda.amazonaws.com"
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

# ----------------------------------------------------------------------------------- Lambdas
# Two small functions, one file each: the planner maps a trigger to its datasets; the claim
# step skips a file already read and takes or waits for a dataset's lock before a Glue run.

data "archive_file" "function" {
  for_each = local.functions

  type        = "zip"
  source_file = "${path.module}/functions/${each.value.module}.py"
  output_path = "${path.root}/.build/${var.name}-${each.key}.zip"
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name}-${each.key}-role"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
  tags               = var.tags
}

# What every function needs at run time: its own logs, the key, X-Ray.
data "aws_iam_policy_document" "function_runtime" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  # The lake key also protects the buckets, parameters, secret and execution data: a function may
  # use it only through Lambda for its own environment, and through DynamoDB for the tables.
  statement {
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:lambda:FunctionArn"
      values   = ["arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${var.name}-${each.key}"]
    }
  }

  statement {
    sid       = "DecryptTables"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  # X-Ray has no resource-level permissions: these two write-only actions take "*".
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "planner" {
  source_policy_documents = [data.aws_iam_policy_document.function_runtime["plan"].json]

  statement {
    sid       = "ReadContracts"
    actions   = ["dynamodb:Scan"]
    resources = [var.contracts_table_arn]
  }
}

data "aws_iam_policy_document" "claim" {
  source_policy_documents = [data.aws_iam_policy_document.function_runtime["claim"].json]

  statement {
    sid       = "ReadLedger"
    actions   = ["dynamodb:GetItem"]
    resources = [var.ledger_table_arn]
  }

  # The lock is one item of the runs table; the function reads it and writes it conditionally.
  statement {
    sid       = "TakeDatasetLock"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [var.runs_table_arn]
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${each.key}-ingest"
  role   = aws_iam_role.function[each.key].id
  policy = each.key == "plan" ? data.aws_iam_policy_document.planner.json : data.aws_iam_policy_document.claim.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117: the functions only call the DynamoDB API; a VPC attachment adds ENIs and cold starts and no protection the role does not already give
  #checkov:skip=CKV_AWS_116: invoked synchronously by Step Functions, which retries and catches; a dead-letter queue would never receive anything
  #checkov:skip=CKV_AWS_272: the code is one file from this repository, deployed by Terraform from git; code signing needs a signing profile outside this stack
  #checkov:skip=CKV_AWS_115: no reservation by default (lambda_reserved_concurrency = null): Lambda refuses one that leaves less than 100 of the account's quota unreserved; the functions make short calls, once per execution and dataset, from the shared pool
  for_each = local.functions

  function_name                  = "${var.name}-${each.key}"
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = "python3.12"
  handler                        = "${each.value.module}.handler"
  filename                       = data.archive_file.function[each.key].output_path
  source_code_hash               = data.archive_file.function[each.key].output_base64sha256
  timeout                        = 30 # below the state machine task's 60 s, so that a slow call fails as the function's
  memory_size                    = 256
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = each.value.environment
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
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
    sid       = "PlanAndClaim"
    actions   = ["lambda:InvokeFunction"]
    resources = concat(local.lambda_arns, [for arn in local.lambda_arns : "${arn}:*"])
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
    sid       = "RecordFailureAndReleaseLock"
    actions   = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [var.runs_table_arn]
  }

  statement {
    sid       = "Alert"
    actions   = ["sns:Publish"]
    resources = [var.sns_topic_arn]
  }

  # The lake key, for three uses, each confined to it. The topic and the tables: SNS and DynamoDB
  # use the key on the role's behalf, and both support kms:ViaService (AWS KMS, "kms:ViaService").
  statement {
    sid       = "EncryptedTopicAndTables"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com", "dynamodb.${local.region}.amazonaws.com"]
    }
  }

  # The state machine's own definition and execution data (encryption_configuration below): Step
  # Functions uses the key under the encryption context aws:states:stateMachineArn, so the role may
  # use it for this state machine only (the grant aws-cdk-lib's StateMachine gives its role). No
  # kms:ViaService here: Step Functions is not in the KMS guide's list of services that set it.
  statement {
    sid       = "OwnExecutionData"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }

  # Execution logs delivered to the encrypted log group: the role generates their data key under the
  # encryption context SourceArn of the account's log resources (aws-cdk-lib grants the same for a
  # state machine with a customer managed key that logs to CloudWatch Logs).
  statement {
    sid       = "EncryptedExecutionLogs"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
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
    partition                   = local.partition
    planner_function_arn        = aws_lambda_function.this["plan"].arn
    claim_function_arn          = aws_lambda_function.this["claim"].arn
    lock_wait_seconds           = var.lock_wait_seconds
    lock_max_waits              = var.lock_max_waits
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

  lifecycle {
    # A branch may wait for the lock, then run the job: the execution must outlast both, or it
    # times out with nothing recorded for the dataset.
    precondition {
      condition     = var.execution_timeout_seconds >= var.glue_task_timeout_seconds + var.lock_wait_seconds * var.lock_max_waits
      error_message = "execution_timeout_seconds must be at least glue_task_timeout_seconds + lock_wait_seconds * lock_max_waits."
    }

    # The role's key statement names this ARN before the state machine exists.
    postcondition {
      condition     = self.arn == local.state_machine_arn
      error_message = "The state machine's ARN is not the one its role may use the lake key for (local.state_machine_arn)."
    }
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

  # The state machine is encrypted with the lake key: whoever starts an execution encrypts its
  # input with a data key of that key, so the caller needs the key too (for this state machine only).
  statement {
    sid       = "EncryptExecutionInput"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [aws_sfn_state_machine.this.arn]
    }
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
      etag   = "$.detail.object.etag"
    }
    input_template = "{\"trigger\": \"s3\", \"bucket\": <bucket>, \"object_key\": <key>, \"etag\": <etag>}"
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
