variable "name" {
  description = "Name prefix of the tables: <name>-contracts, <name>-file-ledger, <name>-runs."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the tables."
  type        = string
}

variable "contracts_dir" {
  description = "Directory of the dataset contracts (*.yaml); each file becomes one item of the contracts table."
  type        = string
}

variable "enable_deletion_protection" {
  description = "Protect the tables against deletion (turn off only to tear down a throw-away environment)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
