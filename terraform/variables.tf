# ------------------------------------------------------------------ where and what

variable "aws_region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (lower case, digits, dashes; 3 to 21 characters; not beginning with aws, ssm, xn--, sthree- or amzn-s3-demo-)."
  type        = string
  default     = "datalake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name_prefix))
    error_message = "name_prefix must match ^[a-z][a-z0-9-]{2,20}$."
  }

  # The SSM parameters live under /<name_prefix>/<environment>/, and SSM refuses names that
  # begin with aws or ssm; S3 refuses bucket names (<name_prefix>-<environment>-<zone>-...) that
  # begin with xn--, sthree- or amzn-s3-demo-.
  validation {
    condition     = !can(regex("^(aws|ssm|xn--|sthree-|amzn-s3-demo-)", var.name_prefix))
    error_message = "name_prefix must not begin with aws or ssm (reserved in SSM parameter names), nor with xn--, sthree- or amzn-s3-demo- (reserved in S3 bucket names)."
  }
}

variable "environment" {
  description = "Deployment environment: dev, int or prod."
  type        = string

  validation {
    condition     = contains(["dev", "int", "prod"], var.environment)
    error_message = "environment must be dev, int or prod."
  }
}

variable "tags" {
  description = "Extra tags for every resource (Project, Environment and ManagedBy are added)."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------ network

variable "vpc_name" {
  description = "Name tag of the existing VPC the Glue job runs in (connected to the on-premise site)."
  type        = string

  validation {
    condition     = length(var.vpc_name) > 0
    error_message = "vpc_name must not be empty."
  }
}

variable "private_subnet_tags" {
  description = "Tags that identify the VPC's private subnets (they need explicit route table associations)."
  type        = map(string)
  default     = { Tier = "private" }
}

variable "on_premise_cidrs" {
  description = "CIDR blocks of the on-premise site, reachable from the VPC over VPN or Direct Connect."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.on_premise_cidrs : can(cidrhost(c, 0))])
    error_message = "Every entry of on_premise_cidrs must be a CIDR block such as 10.20.0.0/16."
  }
}

variable "onprem_db_port" {
  description = "TCP port of the on-premise database the Glue JDBC connection reaches."
  type        = number
  default     = 5432

  validation {
    condition     = var.onprem_db_port >= 1 && var.onprem_db_port <= 65535
    error_message = "onprem_db_port must be a TCP port (1-65535)."
  }
}

variable "onprem_jdbc_url" {
  description = "JDBC URL of the on-premise database; when set, a Glue JDBC connection and a Secrets Manager secret for its credentials are created. Empty: neither."
  type        = string
  default     = ""

  validation {
    condition     = var.onprem_jdbc_url == "" || startswith(var.onprem_jdbc_url, "jdbc:")
    error_message = "onprem_jdbc_url must be empty or start with jdbc:."
  }
}

variable "create_vpc_endpoints" {
  description = "Create the S3/DynamoDB gateway and the interface VPC endpoints the job needs (turn off when the VPC already has them)."
  type        = bool
  default     = true
}

variable "create_gateway_endpoints" {
  description = "Create the S3 and DynamoDB gateway endpoints (turn off when the VPC's private route tables already have them; a route table takes one per service)."
  type        = bool
  default     = true
}

# ------------------------------------------------------------------ Glue job

variable "glue_worker_type" {
  description = "Glue worker type of the ingest job."
  type        = string
  default     = "G.1X"

  validation {
    condition     = contains(["G.1X", "G.2X", "G.4X", "G.8X"], var.glue_worker_type)
    error_message = "glue_worker_type must be one of G.1X, G.2X, G.4X, G.8X."
  }
}

variable "glue_number_of_workers" {
  description = "Workers of one job run (the maximum when auto scaling is on)."
  type        = number
  default     = 4

  validation {
    condition     = var.glue_number_of_workers >= 2 && floor(var.glue_number_of_workers) == var.glue_number_of_workers
    error_message = "glue_number_of_workers must be a whole number, at least 2."
  }
}

variable "glue_execution_class" {
  description = "STANDARD, or FLEX (spare capacity at a lower price; fine for a nightly batch)."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "FLEX"], var.glue_execution_class)
    error_message = "glue_execution_class must be STANDARD or FLEX."
  }
}

variable "enable_glue_auto_scaling" {
  description = "Let Glue scale the workers of a run between 2 and glue_number_of_workers."
  type        = bool
  default     = true
}

variable "glue_timeout_minutes" {
  description = "Timeout of one job run in minutes; also the lease of the dataset lock."
  type        = number
  default     = 120

  validation {
    condition     = var.glue_timeout_minutes >= 1 && var.glue_timeout_minutes <= 2880
    error_message = "glue_timeout_minutes must be between 1 and 2880."
  }
}

# Glue's Timeout counts only the time a run consumes resources. Before that a run may wait in
# WAITING: a FLEX run for at most 20 minutes (AWS Glue, "Job run statuses"), a run held by job run
# queuing (job_run_queuing_enabled) until the account's quotas admit it, for no documented maximum.
variable "glue_wait_allowance_minutes" {
  description = "Minutes a Glue run may wait in WAITING (FLEX capacity, at most 20 per the Glue docs; job run queuing) before it starts; the Step Functions task, the dataset lock's lease and the execution timeout wait this much longer than glue_timeout_minutes."
  type        = number
  default     = 30

  validation {
    condition     = var.glue_wait_allowance_minutes >= 0 && var.glue_wait_allowance_minutes <= 1440
    error_message = "glue_wait_allowance_minutes must be between 0 and 1440."
  }
}

variable "glue_max_concurrent_runs" {
  description = "Concurrent runs of the job; raised to the number of enabled datasets when lower (each runs one at a time)."
  type        = number
  default     = 10

  validation {
    condition     = var.glue_max_concurrent_runs >= 1
    error_message = "glue_max_concurrent_runs must be at least 1."
  }
}

# ------------------------------------------------------------------ orchestration

variable "map_max_concurrency" {
  description = "Datasets the state machine ingests in parallel (its Map state's MaxConcurrency)."
  type        = number
  default     = 4

  validation {
    condition     = var.map_max_concurrency >= 1 && var.map_max_concurrency <= 40
    error_message = "map_max_concurrency must be between 1 and 40."
  }
}

variable "lock_wait_seconds" {
  description = "How long a dataset's branch waits before asking again while another run holds the dataset's lock; each turn adds 13 events to the execution's history, which Step Functions caps at 25,000."
  type        = number
  default     = 300

  validation {
    condition     = var.lock_wait_seconds >= 1 && var.lock_wait_seconds <= 3600
    error_message = "lock_wait_seconds must be between 1 and 3600."
  }
}

variable "lock_max_waits" {
  description = "How many times a branch waits for the lock before it ends SKIPPED_LOCKED with an alert (the next trigger takes its file)."
  type        = number
  default     = 12

  validation {
    condition     = var.lock_max_waits >= 1 && var.lock_max_waits <= 1000
    error_message = "lock_max_waits must be between 1 and 1000."
  }
}

variable "schedule_expression" {
  description = "EventBridge schedule of the nightly run over every enabled dataset."
  type        = string
  default     = "cron(0 2 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be a cron(...) or rate(...) expression."
  }
}

# ------------------------------------------------------------------ alerts and queries

variable "alarm_email" {
  description = "E-mail address that receives the alerts; empty for no subscription."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an e-mail address."
  }
}

variable "quarantine_ratio_threshold" {
  description = "Alarm when more than this share of a dataset's rows goes to quarantine (0 < x < 1)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.quarantine_ratio_threshold > 0 && var.quarantine_ratio_threshold < 1
    error_message = "quarantine_ratio_threshold must be between 0 and 1 (exclusive)."
  }
}

variable "files_pending_alarm_days" {
  description = "Alarm when every run of a dataset leaves files for later (archived, not readable by the job, beyond max_files_per_run) for this many days in a row (1 to 7)."
  type        = number
  default     = 2

  validation {
    condition     = var.files_pending_alarm_days >= 1 && var.files_pending_alarm_days <= 7 && floor(var.files_pending_alarm_days) == var.files_pending_alarm_days
    error_message = "files_pending_alarm_days must be a whole number of days from 1 to 7."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "Bytes one Athena query may scan before it is cancelled (default 10 GiB; at least 10 MB)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10485760 (10 MB)."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups in days (0 keeps logs forever)."
  type        = number
  default     = 365

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

# ------------------------------------------------------------------ storage

variable "raw_transition_days" {
  description = "Days after which raw files move to STANDARD_IA (at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_transition_days >= 30
    error_message = "raw_transition_days must be at least 30 (S3 minimum for STANDARD_IA)."
  }
}

variable "raw_glacier_days" {
  description = "Days after which raw files move to raw_archive_storage_class (at least raw_transition_days + 30)."
  type        = number
  default     = 180

  validation {
    condition     = var.raw_glacier_days >= 60
    error_message = "raw_glacier_days must be at least 60."
  }
}

variable "raw_archive_storage_class" {
  description = "Archive class of old raw files: GLACIER_IR (instant reads) or DEEP_ARCHIVE (cheapest; hours to restore, and the job leaves such a file pending until it is restored)."
  type        = string
  default     = "GLACIER_IR"

  validation {
    condition     = contains(["GLACIER_IR", "DEEP_ARCHIVE"], var.raw_archive_storage_class)
    error_message = "raw_archive_storage_class must be GLACIER_IR or DEEP_ARCHIVE."
  }
}

variable "enable_force_destroy" {
  description = "Let terraform destroy delete the lake's data: the state tables lose their deletion protection and the buckets are emptied, every object version included. Apply it as true, then destroy; only for a throw-away environment."
  type        = bool
  default     = false
}

variable "enable_catalog_encryption" {
  description = "Manage the account-wide Glue Data Catalog encryption settings with the lake key (one per account and region: off when another stack owns them)."
  type        = bool
  default     = false
}
