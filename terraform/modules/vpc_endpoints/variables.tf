variable "name" {
  description = "Name prefix of the endpoints and their security group."
  type        = string
}

variable "region" {
  description = "AWS region of the VPC (endpoint service names are com.amazonaws.<region>.<service>)."
  type        = string
}

variable "vpc_id" {
  description = "VPC to create the endpoints in."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC; the interface endpoints accept HTTPS from it."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "vpc_cidr_block must be a CIDR block."
  }
}

variable "subnet_ids" {
  description = "Private subnets of the interface endpoints, at most one per availability zone."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must hold at least one subnet."
  }
}

variable "route_table_ids" {
  description = "Route tables of the private subnets; the S3 and DynamoDB gateway endpoints are added to them."
  type        = list(string)
}

# The default is what the Glue job in the private subnet calls: Glue (catalog, connections),
# CloudWatch Logs (Glue writes the job's logs) and CloudWatch metrics (monitoring); S3 and
# DynamoDB go through the gateway endpoints. kms and sts stay although the job's own code does
# not call them: the Glue runtime on the workers may (KMS for the security configuration's
# client-side encryption, STS for credentials). Nothing in the VPC calls SSM or Step Functions;
# add them (or events, sns, athena) here when something in the VPC does. Secrets Manager comes
# with create_secretsmanager_endpoint.
variable "interface_services" {
  description = "Services reached through interface endpoints (what a Glue job in a private subnet calls)."
  type        = list(string)
  default     = ["glue", "logs", "monitoring", "kms", "sts"]

  validation {
    condition = alltrue([
      for s in var.interface_services :
      contains(["glue", "logs", "monitoring", "kms", "secretsmanager", "ssm", "sts", "states", "events", "sns", "athena"], s)
    ])
    error_message = "interface_services may hold glue, logs, monitoring, kms, secretsmanager, ssm, sts, states, events, sns, athena."
  }
}

variable "create_gateway_endpoints" {
  description = "Create the S3 and DynamoDB gateway endpoints (off when the route tables already have them: a route table takes one per service)."
  type        = bool
  default     = true
}

variable "create_secretsmanager_endpoint" {
  description = "Add a Secrets Manager interface endpoint (for a Glue JDBC connection whose credentials are in Secrets Manager)."
  type        = bool
  default     = false
}

variable "enable_private_dns" {
  description = "Resolve the services' public names to the interface endpoints inside the VPC (off when the VPC already has endpoints for them)."
  type        = bool
  default     = true
}

variable "s3_read_only_bucket_arns" {
  description = "Buckets outside the account that principals of the account may read through the S3 endpoint; null for Glue's own asset buckets (aws-glue-* in the partition)."
  type        = list(string)
  default     = null
}

variable "tags" {
  description = "Tags merged into every resource of the module."
  type        = map(string)
  default     = {}
}
