variable "name" {
  description = "Name of the SNS topic."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the topic; its policy must let CloudWatch and EventBridge use it."
  type        = string
}

variable "alarm_email" {
  description = "E-mail address subscribed to the topic; empty for no subscription. The address must confirm the subscription."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an e-mail address."
  }
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
