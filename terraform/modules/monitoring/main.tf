# What tells the team that the ingest went wrong, and where they look: CloudWatch alarms and an
# EventBridge rule that notify the SNS topic, and one dashboard.

locals {
  datasets = toset(var.dataset_ids)

  state_machine_alarms = {
    failed    = "ExecutionsFailed"
    timed_out = "ExecutionsTimedOut"
  }

  failure_alarms = {
    "run-failed" = {
      metric      = "RunFailed"
      description = "An ingest run of dataset %s failed; its run record in DynamoDB says why."
    }
    "files-failed" = {
      metric      = "FilesFailed"
      description = "A raw file of dataset %s could not be read; the ledger and the run record say why, and the file stays out until it is replaced."
    }
  }
  dataset_failures = {
    for pair in setproduct(sort(var.dataset_ids), keys(local.failure_alarms)) :
    "${pair[0]}-${pair[1]}" => { dataset = pair[0], kind = pair[1] }
  }
}

# --------------------------------------------------------------------------- Step Functions

resource "aws_cloudwatch_metric_alarm" "state_machine" {
  for_each = local.state_machine_alarms

  alarm_name          = "${var.name}-sfn-${replace(each.key, "_", "-")}"
  alarm_description   = "The ingest state machine had ${each.value} in the last ${var.alarm_period_seconds} s."
  namespace           = "AWS/States"
  metric_name         = each.value
  dimensions          = { StateMachineArn = var.state_machine_arn }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.sns_topic_arn]
  tags                = var.tags
}

# --------------------------------------------------------------------------- triggers

# A trigger that cannot start an execution (a permission, a throttle after all retries) leaves
# no execution behind, so the alarms above never see it: EventBridge counts it here.
resource "aws_cloudwatch_metric_alarm" "trigger_failed" {
  for_each = var.event_rule_names

  alarm_name          = "${var.name}-trigger-${replace(each.key, "_", "-")}-failed"
  alarm_description   = "EventBridge rule ${each.value} could not start the ingest state machine."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = each.value }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.sns_topic_arn]
  tags                = var.tags
}

# --------------------------------------------------------------------------- per dataset

# Any datapoint of these counts, which the job publishes per dataset (lake_ingest._metrics), is an
# alarm. RunFailed: a run failed. FilesFailed: a raw file that cannot be read (garbage, a wrong
# delimiter, a gzip stream cut short) is recorded FAILED in the ledger with the reason and stays out
# until it is replaced, while its run succeeds; this is the only sign of it outside the run record.
resource "aws_cloudwatch_metric_alarm" "dataset_failure" {
  for_each = local.dataset_failures

  alarm_name          = "${var.name}-${each.value.dataset}-${each.value.kind}"
  alarm_description   = format(local.failure_alarms[each.value.kind].description, each.value.dataset)
  namespace           = var.metrics_namespace
  metric_name         = local.failure_alarms[each.value.kind].metric
  dimensions          = { DatasetId = each.value.dataset }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.sns_topic_arn]
  tags                = var.tags
}

# FilesPending counts the files a run left for a later one: beyond max_files_per_run, in an archive
# storage class, or not readable by the job's role. A backlog that even the day's emptiest run left
# (the day's minimum above 0), files_pending_alarm_days days in a row, will not clear on its own.
resource "aws_cloudwatch_metric_alarm" "files_pending" {
  for_each = local.datasets

  alarm_name          = "${var.name}-${each.value}-files-pending"
  alarm_description   = "Every run of dataset ${each.value} for ${var.files_pending_alarm_days} days left files for later: archived, not readable by the job, or more than a run takes."
  namespace           = var.metrics_namespace
  metric_name         = "FilesPending"
  dimensions          = { DatasetId = each.value }
  statistic           = "Minimum"
  period              = 86400
  evaluation_periods  = var.files_pending_alarm_days
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.sns_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "quarantine_ratio" {
  for_each = local.datasets

  alarm_name          = "${var.name}-${each.value}-quarantine-ratio"
  alarm_description   = "More than ${var.quarantine_ratio_threshold * 100}% of the rows of dataset ${each.value} went to quarantine."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.quarantine_ratio_threshold
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.sns_topic_arn]
  tags                = var.tags

  metric_query {
    id          = "ratio"
    expression  = "IF(rows_read > 0, rows_quarantined / rows_read, 0)"
    label       = "Quarantined share of rows read"
    return_data = true
  }

  metric_query {
    id = "rows_quarantined"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "RowsQuarantined"
      dimensions  = { DatasetId = each.value }
      period      = var.alarm_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id = "rows_read"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "RowsRead"
      dimensions  = { DatasetId = each.value }
      period      = var.alarm_period_seconds
      stat        = "Sum"
    }
  }
}

# --------------------------------------------------------------------------- Glue job state

resource "aws_cloudwatch_event_rule" "glue_job_failed" {
  name        = "${var.name}-glue-job-failed"
  description = "A run of the Glue ingest job ended FAILED, TIMEOUT or ERROR"

  event_pattern = jsonencode({
    source        = ["aws.glue"]
    "detail-type" = ["Glue Job State Change"]
    detail = {
      jobName = [var.glue_job_name]
      state   = ["FAILED", "TIMEOUT", "ERROR"]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "glue_job_failed" {
  rule      = aws_cloudwatch_event_rule.glue_job_failed.name
  target_id = "alerts-topic"
  arn       = var.sns_topic_arn

  input_transformer {
    input_paths = {
      job     = "$.detail.jobName"
      run     = "$.detail.jobRunId"
      state   = "$.detail.state"
      message = "$.detail.message"
    }
    input_template = "\"Glue job <job> run <run> ended <state>: <message>\""
  }
}

# --------------------------------------------------------------------------- dashboard

locals {
  ns = var.metrics_namespace

  dataset_widgets = [
    for i, d in sort(var.dataset_ids) : {
      type   = "metric"
      x      = (i % 3) * 8
      y      = 1 + floor(i / 3) * 6
      width  = 8
      height = 6
      properties = {
        title   = "Rows of ${d}"
        region  = var.region
        view    = "timeSeries"
        stat    = "Sum"
        period  = 3600
        stacked = false
        metrics = [
          [local.ns, "RowsRead", "DatasetId", d],
          [local.ns, "RowsWritten", "DatasetId", d],
          [local.ns, "RowsQuarantined", "DatasetId", d],
        ]
      }
    }
  ]

  runs_y = 1 + ceil(length(var.dataset_ids) / 3) * 6

  run_widgets = [
    {
      type   = "metric"
      x      = 0
      y      = local.runs_y
      width  = 8
      height = 6
      properties = {
        title  = "State machine executions"
        region = var.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 3600
        metrics = [
          for m in ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"] :
          ["AWS/States", m, "StateMachineArn", var.state_machine_arn]
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = local.runs_y
      width  = 8
      height = 6
      properties = {
        title   = "Glue job runs by dataset"
        region  = var.region
        view    = "timeSeries"
        stat    = "Sum"
        period  = 3600
        stacked = true
        metrics = flatten([
          for d in sort(var.dataset_ids) : [
            [local.ns, "RunSucceeded", "DatasetId", d],
            [local.ns, "RunFailed", "DatasetId", d],
          ]
        ])
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = local.runs_y
      width  = 8
      height = 6
      properties = {
        title   = "Run duration (s)"
        region  = var.region
        view    = "timeSeries"
        stat    = "Maximum"
        period  = 3600
        metrics = [for d in sort(var.dataset_ids) : [local.ns, "DurationSeconds", "DatasetId", d]]
      }
    },
  ]

  # Every alarm of the module. An alarm widget shows at most 100 alarms (a dashboard with more
  # is refused), so they fill as many widgets as they need: the state machine's and one per
  # trigger first, then four per dataset.
  alarm_arns = concat(
    [for a in aws_cloudwatch_metric_alarm.state_machine : a.arn],
    [for a in aws_cloudwatch_metric_alarm.trigger_failed : a.arn],
    [for a in aws_cloudwatch_metric_alarm.dataset_failure : a.arn],
    [for a in aws_cloudwatch_metric_alarm.files_pending : a.arn],
    [for a in aws_cloudwatch_metric_alarm.quarantine_ratio : a.arn],
  )
  alarm_widgets = [for i, arns in chunklist(local.alarm_arns, 100) : {
    type   = "alarm"
    x      = 0
    y      = local.runs_y + 6 + 4 * i
    width  = 24
    height = 4
    properties = {
      title  = length(local.alarm_arns) > 100 ? "Alarms (${i + 1})" : "Alarms"
      alarms = arns
    }
  }]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name}-ingest"

  dashboard_body = jsonencode({
    widgets = concat(
      [{
        type       = "text"
        x          = 0
        y          = 0
        width      = 24
        height     = 1
        properties = { markdown = "## Data lake ingest: ${var.glue_job_name}" }
      }],
      local.dataset_widgets,
      local.run_widgets,
      local.alarm_widgets,
    )
  })
}
