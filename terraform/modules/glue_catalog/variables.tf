variable "database_names" {
  description = "Glue databases to create: the distinct target.database of the dataset contracts."
  type        = list(string)

  validation {
    condition     = alltrue([for d in var.database_names : can(regex("^[a-z0-9_]{1,255}$", d))])
    error_message = "Glue database names must be lower-case letters, digits and underscores."
  }
}

variable "curated_bucket_name" {
  description = "Curated zone bucket; each database's location is s3://<bucket>/<database>/ (the job writes tables below it)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for the Data Catalog encryption settings."
  type        = string
}

variable "enable_catalog_encryption" {
  description = "Manage the account-wide Data Catalog encryption settings (metadata and connection passwords with the KMS key). They are one per account and region: leave off when another stack owns them."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
