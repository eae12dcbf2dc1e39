variable "name" {
  description = "Name prefix of the alarms, the EventBridge rule and the dashboard."
  type        = string
}

variable "region" {
  description = "AWS region of the metrics shown on the dashboard."
  type        = string
}

variable "sns_topic_arn" {
  description = "SNS topic every alarm and the Glue failure rule notify."
  type        = string
}

variable "state_machine_arn" {
  description = "ARN of the ingest state machine (dimension StateMachineArn of AWS/States)."
  type        = string
}

variable "event_rule_names" {
  description = "EventBridge rules that start the state machine, by kind: one FailedInvocations alarm each."
  type        = map(string)
  default     = {}
}

variable "glue_job_name" {
  description = "Name of the Glue ingest job (EventBridge rule on its failures, dashboard)."
  type        = string
}

variable "dataset_ids" {
  description = "Datasets to alarm on and chart: a run-failed, a files-failed, a files-pending and a quarantine-ratio alarm each."
  type        = list(string)
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the job's metrics (dimension DatasetId)."
  type        = string
  default     = "DataLake/Ingest"
}

variable "quarantine_ratio_threshold" {
  description = "Alarm when RowsQuarantined / RowsRead of a dataset exceeds this share (0 < x < 1)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.quarantine_ratio_threshold > 0 && var.quarantine_ratio_threshold < 1
    error_message = "quarantine_ratio_threshold must be between 0 and 1 (exclusive)."
  }
}

variable "files_pending_alarm_days" {
  description = "Alarm when every run of a dataset leaves files for later (FilesPending above 0) for this many days in a row (1 to 7)."
  type        = number
  default     = 2

  validation {
    # CloudWatch: a daily period may be evaluated over 7 days at most.
    condition     = var.files_pending_alarm_days >= 1 && var.files_pending_alarm_days <= 7 && floor(var.files_pending_alarm_days) == var.files_pending_alarm_days
    error_message = "files_pending_alarm_days must be a whole number of days from 1 to 7."
  }
}

variable "alarm_period_seconds" {
  description = "Period over which the alarms sum their metrics, in seconds (not the files-pending alarm's: a day)."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 300, 900, 3600, 21600, 86400], var.alarm_period_seconds)
    error_message = "alarm_period_seconds must be one of 60, 300, 900, 3600, 21600, 86400."
  }
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
