variable "name" {
  description = "Name of the Glue job; also the prefix of its role, security group, connections and secret."
  type        = string
}

variable "region" {
  description = "AWS region of the deployment (for ARNs and the S3/DynamoDB prefix lists)."
  type        = string
}

# ------------------------------------------------------------------ code and zones

variable "script_location" {
  description = "S3 URI of the Glue entry script (glue_ingest_job.py)."
  type        = string

  validation {
    condition     = startswith(var.script_location, "s3://")
    error_message = "script_location must be an s3:// URI."
  }
}

variable "extra_py_files" {
  description = "S3 URI of the zip holding the lake_ingest package (passed as --extra-py-files)."
  type        = string

  validation {
    condition     = startswith(var.extra_py_files, "s3://")
    error_message = "extra_py_files must be an s3:// URI."
  }
}

variable "temp_dir" {
  description = "S3 URI Glue uses as --TempDir; must be inside the scripts bucket."
  type        = string

  validation {
    condition     = startswith(var.temp_dir, "s3://")
    error_message = "temp_dir must be an s3:// URI."
  }
}

variable "bucket_names" {
  description = "Bucket of each zone the job touches: raw (read), curated and quarantine (read/write), scripts (read, temp dir)."
  type = object({
    raw        = string
    curated    = string
    quarantine = string
    scripts    = string
  })
}

variable "dynamodb_tables" {
  description = "Name and ARN of the contracts, ledger and runs tables."
  type = object({
    contracts = object({ name = string, arn = string })
    ledger    = object({ name = string, arn = string })
    runs      = object({ name = string, arn = string })
  })
}

variable "glue_database_names" {
  description = "Glue databases whose tables and partitions the job creates and updates."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key (S3, logs, bookmarks, secret)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the job's own metrics (--metrics_namespace)."
  type        = string
  default     = "DataLake/Ingest"
}

variable "max_files_per_run" {
  description = "Most raw files one run ingests (--max_files_per_run); the rest wait for the next run."
  type        = number
  default     = 500

  validation {
    condition     = var.max_files_per_run >= 1
    error_message = "max_files_per_run must be at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the job's two log groups, in days."
  type        = number
  default     = 365
}

# ------------------------------------------------------------------ capacity

variable "worker_type" {
  description = "Glue worker type."
  type        = string
  default     = "G.1X"

  validation {
    condition     = contains(["G.1X", "G.2X", "G.4X", "G.8X"], var.worker_type)
    error_message = "worker_type must be one of G.1X, G.2X, G.4X, G.8X."
  }
}

variable "number_of_workers" {
  description = "Number of workers (the maximum when auto scaling is on)."
  type        = number
  default     = 2

  validation {
    condition     = var.number_of_workers >= 2 && floor(var.number_of_workers) == var.number_of_workers
    error_message = "number_of_workers must be a whole number, at least 2."
  }
}

variable "execution_class" {
  description = "STANDARD, or FLEX (spare capacity, cheaper, may start later; G.1X/G.2X only)."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "FLEX"], var.execution_class)
    error_message = "execution_class must be STANDARD or FLEX."
  }
}

variable "enable_auto_scaling" {
  description = "Let Glue add and remove workers up to number_of_workers (--enable-auto-scaling)."
  type        = bool
  default     = true
}

variable "timeout_minutes" {
  description = "Job run timeout in minutes; also the dataset lock lease (--lock_lease_seconds)."
  type        = number
  default     = 120

  validation {
    condition     = var.timeout_minutes >= 1 && var.timeout_minutes <= 2880
    error_message = "timeout_minutes must be between 1 and 2880."
  }
}

variable "max_concurrent_runs" {
  description = "Concurrent runs of the job (one per dataset at a time; the state machine's Map runs several datasets)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_concurrent_runs >= 1
    error_message = "max_concurrent_runs must be at least 1."
  }
}

# ------------------------------------------------------------------ network

variable "vpc_id" {
  description = "VPC the job's network connection runs in."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (the interface endpoints listen there on 443)."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "vpc_cidr_block must be a CIDR block."
  }
}

variable "subnet_id" {
  description = "Private subnet of the connections (a Glue connection has exactly one subnet)."
  type        = string
}

variable "on_premise_cidrs" {
  description = "CIDR blocks of the on-premise site, reachable over VPN / Direct Connect."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.on_premise_cidrs : can(cidrhost(c, 0))])
    error_message = "Every entry of on_premise_cidrs must be a CIDR block."
  }
}

variable "onprem_db_port" {
  description = "TCP port of the on-premise database."
  type        = number
  default     = 5432

  validation {
    condition     = var.onprem_db_port >= 1 && var.onprem_db_port <= 65535
    error_message = "onprem_db_port must be a TCP port (1-65535)."
  }
}

variable "create_jdbc_connection" {
  description = "Create the JDBC connection to the on-premise database and the Secrets Manager secret holding its credentials."
  type        = bool
  default     = false
}

variable "jdbc_url" {
  description = "JDBC URL of the on-premise database (used when create_jdbc_connection is true)."
  type        = string
  default     = ""

  validation {
    condition     = var.jdbc_url == "" || startswith(var.jdbc_url, "jdbc:")
    error_message = "jdbc_url must be empty or start with jdbc:."
  }
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
