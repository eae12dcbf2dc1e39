variable "name" {
  description = "Name prefix of the buckets; each bucket is named <name>-<zone>-<account id>."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key used as the default encryption of every zone bucket."
  type        = string
}

variable "raw_transition_days" {
  description = "Days after which raw objects move to STANDARD_IA (S3 requires at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_transition_days >= 30 && floor(var.raw_transition_days) == var.raw_transition_days
    error_message = "raw_transition_days must be a whole number of days, at least 30 (S3 minimum for STANDARD_IA)."
  }
}

variable "raw_glacier_days" {
  description = "Days after which raw objects move to the archive storage class; at least raw_transition_days + 30."
  type        = number
  default     = 180

  validation {
    condition     = var.raw_glacier_days >= 60 && floor(var.raw_glacier_days) == var.raw_glacier_days
    error_message = "raw_glacier_days must be a whole number of days, at least 60."
  }
}

variable "raw_archive_storage_class" {
  description = "Storage class raw objects are archived to: GLACIER_IR (millisecond reads) or DEEP_ARCHIVE (cheapest; the job leaves such a file pending until it is restored)."
  type        = string
  default     = "GLACIER_IR"

  validation {
    condition     = contains(["GLACIER_IR", "DEEP_ARCHIVE"], var.raw_archive_storage_class)
    error_message = "raw_archive_storage_class must be GLACIER_IR or DEEP_ARCHIVE."
  }
}

variable "quarantine_expiration_days" {
  description = "Days after which quarantined rows are deleted (long enough to investigate and replay)."
  type        = number
  default     = 90

  validation {
    condition     = var.quarantine_expiration_days >= 1
    error_message = "quarantine_expiration_days must be at least 1."
  }
}

variable "athena_results_expiration_days" {
  description = "Days after which Athena query results are deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.athena_results_expiration_days >= 1
    error_message = "athena_results_expiration_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions are deleted in every bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_expiration_days" {
  description = "Days after which S3 server access logs are deleted from the log bucket."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 1
    error_message = "access_log_expiration_days must be at least 1."
  }
}

variable "enable_force_destroy" {
  description = "Let terraform destroy delete the buckets with every object version in them (a throw-away environment only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
