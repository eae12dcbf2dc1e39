variable "path_prefix" {
  description = "Path the parameters live under, e.g. /datalake/dev (no trailing slash)."
  type        = string

  validation {
    condition     = can(regex("^(/[a-zA-Z0-9_.-]+)+$", var.path_prefix))
    error_message = "path_prefix must look like /name/environment (no trailing slash)."
  }
}

variable "parameters" {
  description = "Parameter name (below path_prefix) => value. Every value is stored as a SecureString."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the SecureString parameters."
  type        = string
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
