variable "name" {
  description = "Name of the state machine; the planner function, roles, rules and log groups derive from it."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{3,60}$", var.name))
    error_message = "name must be 3-60 letters, digits or hyphens."
  }
}

variable "region" {
  description = "AWS region of the deployment (for the Glue job's ARN in the state machine's policy)."
  type        = string
}

variable "glue_job_name" {
  description = "Name of the Glue ingest job the state machine runs once per dataset."
  type        = string
}

variable "contracts_table_name" {
  description = "DynamoDB table holding the dataset contracts (hash key dataset_id)."
  type        = string
}

variable "contracts_table_arn" {
  description = "ARN of the contracts table."
  type        = string
}

variable "ledger_table_name" {
  description = "DynamoDB file ledger (the claim Lambda skips a file recorded there)."
  type        = string
}

variable "ledger_table_arn" {
  description = "ARN of the file ledger."
  type        = string
}

variable "runs_table_name" {
  description = "DynamoDB table of run records (dataset_id, run_id), where orchestration failures are recorded."
  type        = string
}

variable "runs_table_arn" {
  description = "ARN of the runs table."
  type        = string
}

variable "sns_topic_arn" {
  description = "SNS topic that receives a message for every dataset that fails."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the log groups, the function's environment and the SNS topic."
  type        = string
}

variable "raw_bucket_name" {
  description = "Raw zone bucket; its Object Created events (EventBridge notifications) start executions."
  type        = string
}

variable "max_concurrency" {
  description = "How many datasets the Map state ingests at the same time."
  type        = number
  default     = 4

  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 40
    error_message = "max_concurrency must be between 1 and 40."
  }
}

variable "schedule_expression" {
  description = "EventBridge schedule of the time-based trigger, e.g. cron(0 2 * * ? *)."
  type        = string
  default     = "cron(0 2 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be a cron(...) or rate(...) expression."
  }
}

variable "glue_task_timeout_seconds" {
  description = "Timeout of one Glue task in the state machine, also the lease of the lock the claim step takes: above the Glue job's own timeout plus the time a run may wait in WAITING before it starts."
  type        = number
  default     = 9300 # 30 minutes of WAITING, a 120-minute run and 5 minutes more (the root's defaults)
}

variable "glue_retry_interval_seconds" {
  description = "First wait before retrying a Glue run refused for concurrency or throttling (then doubled, with jitter)."
  type        = number
  default     = 30

  validation {
    condition     = var.glue_retry_interval_seconds >= 1 && var.glue_retry_interval_seconds <= 600
    error_message = "glue_retry_interval_seconds must be between 1 and 600."
  }
}

variable "lock_wait_seconds" {
  description = "How long a dataset's branch waits before asking again while another run holds the dataset's lock. Each turn adds 13 events to the execution's history, which Step Functions caps at 25,000: fewer, longer waits let more datasets wait at once."
  type        = number
  default     = 300

  validation {
    condition     = var.lock_wait_seconds >= 1 && var.lock_wait_seconds <= 3600
    error_message = "lock_wait_seconds must be between 1 and 3600."
  }
}

variable "lock_max_waits" {
  description = "How many times a dataset's branch waits for the lock before it ends SKIPPED_LOCKED (the next trigger takes its file)."
  type        = number
  default     = 12

  validation {
    condition     = var.lock_max_waits >= 1 && var.lock_max_waits <= 1000
    error_message = "lock_max_waits must be between 1 and 1000."
  }
}

variable "execution_timeout_seconds" {
  description = "Timeout of a whole execution."
  type        = number
  default     = 28800
}

variable "log_level" {
  description = "State machine execution logging level."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.log_level)
    error_message = "log_level must be one of ALL, ERROR, FATAL, OFF."
  }
}

variable "log_retention_days" {
  description = "Retention of the state machine's and the planner's log groups."
  type        = number
  default     = 365
}

variable "lambda_reserved_concurrency" {
  description = "Concurrent executions reserved for each of the planner and claim functions; null reserves none (they share the account's unreserved pool). Lambda refuses a reservation that leaves less than 100 of the account's concurrency quota unreserved, so set it only where the quota allows."
  type        = number
  default     = null

  validation {
    condition     = var.lambda_reserved_concurrency == null || try(var.lambda_reserved_concurrency >= 1, false)
    error_message = "lambda_reserved_concurrency must be null (no reservation) or at least 1."
  }
}

variable "tags" {
  description = "Tags merged into every resource."
  type        = map(string)
  default     = {}
}
