output "job_name" {
  description = "Name of the Glue job."
  value       = aws_glue_job.this.name
}

output "job_arn" {
  description = "ARN of the Glue job."
  value       = aws_glue_job.this.arn
}

output "role_arn" {
  description = "ARN of the job's IAM role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the job's IAM role."
  value       = aws_iam_role.this.name
}

output "security_group_id" {
  description = "Security group of the job's ENIs (allow it on the on-premise firewall's side too)."
  value       = aws_security_group.this.id
}

output "network_connection_name" {
  description = "Glue NETWORK connection the job runs in."
  value       = aws_glue_connection.network.name
}

output "jdbc_connection_name" {
  description = "Glue JDBC connection to the on-premise database (null when not created)."
  value       = one(aws_glue_connection.onprem_db[*].name)
}

output "onprem_db_secret_arn" {
  description = "Secrets Manager secret for the on-premise database credentials; put its value outside Terraform (null when not created)."
  value       = one(aws_secretsmanager_secret.onprem_db[*].arn)
}

output "security_configuration_name" {
  description = "Glue security configuration of the job (S3, logs and bookmarks encrypted with the KMS key)."
  value       = aws_glue_security_configuration.this.name
}

output "log_group_names" {
  description = "Log groups of the job: error (driver, Spark and the job's own log) and output (stdout, stderr)."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "default_arguments" {
  description = "Default arguments of the job (the state machine adds --dataset_id and --run_id)."
  value       = aws_glue_job.this.default_arguments
}
