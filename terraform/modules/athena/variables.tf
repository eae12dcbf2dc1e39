variable "name" {
  description = "Name of the Athena workgroup."
  type        = string
}

variable "results_bucket_name" {
  description = "Bucket that receives the query results (s3://<bucket>/results/)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the query results (SSE_KMS)."
  type        = string
}

variable "region" {
  description = "AWS region of the Glue Data Catalog the query policy reads, and of the services (S3, Athena, Glue) through which it may use the lake key."
  type        = string
}

variable "readable_bucket_names" {
  description = "Buckets the query policy may read, by zone (the stack passes curated and quarantine)."
  type        = map(string)
}

variable "glue_database_names" {
  description = "Glue databases whose tables the query policy may read."
  type        = list(string)
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query that scans more bytes than this (at least 10 MB)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.bytes_scanned_cutoff_per_query >= 10485760
    error_message = "bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB)."
  }
}

variable "enable_cloudwatch_metrics" {
  description = "Publish the workgroup's query metrics to CloudWatch."
  type        = bool
  default     = true
}

variable "enable_force_destroy" {
  description = "Let terraform destroy delete the workgroup with its saved queries (a throw-away environment only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
