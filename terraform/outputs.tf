# ------------------------------------------------------------------ run it

output "state_machine_arn" {
  description = "ARN of the ingest state machine: start an execution to ingest now."
  value       = module.state_machine.state_machine_arn
}

output "state_machine_name" {
  description = "Name of the ingest state machine."
  value       = module.state_machine.state_machine_name
}

output "planner_function_name" {
  description = "Lambda function the state machine uses to decide which datasets to run."
  value       = module.state_machine.planner_function_name
}

output "claim_function_name" {
  description = "Lambda function the state machine asks, before each Glue run, to skip a file already read or to take or wait for the dataset's lock."
  value       = module.state_machine.claim_function_name
}

output "state_machine_log_group_name" {
  description = "Log group of the state machine's executions."
  value       = module.state_machine.log_group_name
}

output "glue_job_name" {
  description = "Name of the Glue ingest job."
  value       = module.glue_ingest_job.job_name
}

output "glue_job_role_arn" {
  description = "IAM role of the Glue ingest job."
  value       = module.glue_ingest_job.role_arn
}

output "glue_job_log_group_names" {
  description = "Log groups of the job: error (driver, Spark and the job's own log) and output (stdout, stderr)."
  value       = module.glue_ingest_job.log_group_names
}

output "glue_security_group_id" {
  description = "Security group of the Glue job's ENIs (its egress rules reach the on-premise CIDRs)."
  value       = module.glue_ingest_job.security_group_id
}

output "glue_subnet_id" {
  description = "Private subnet the Glue job's ENIs take their addresses in."
  value       = local.private_subnet_ids[0]
}

output "glue_subnet_cidr_block" {
  description = "CIDR block of that subnet: what the on-premise firewall allows for the job's connections."
  value       = data.aws_subnet.private[local.private_subnet_ids[0]].cidr_block
}

output "glue_jdbc_connection_name" {
  description = "Glue JDBC connection to the on-premise database (null without onprem_jdbc_url)."
  value       = module.glue_ingest_job.jdbc_connection_name
}

output "onprem_db_secret_arn" {
  description = "Secret for the on-premise database credentials; put its value with the CLI, never in Terraform (null without onprem_jdbc_url)."
  value       = module.glue_ingest_job.onprem_db_secret_arn
}

# ------------------------------------------------------------------ storage and state

output "raw_bucket_name" {
  description = "Raw zone: where the on-premise site delivers its files."
  value       = module.s3_zones.raw_bucket_name
}

output "curated_bucket_name" {
  description = "Curated zone: the Parquet tables."
  value       = module.s3_zones.curated_bucket_name
}

output "quarantine_bucket_name" {
  description = "Quarantine zone: rejected rows and the rules they broke."
  value       = module.s3_zones.quarantine_bucket_name
}

output "scripts_bucket_name" {
  description = "Artifacts bucket: Glue script, dependency zip, Glue temp files."
  value       = module.s3_zones.scripts_bucket_name
}

output "athena_results_bucket_name" {
  description = "Bucket of Athena query results."
  value       = module.s3_zones.athena_results_bucket_name
}

output "access_logs_bucket_name" {
  description = "Bucket of the S3 server access logs."
  value       = module.s3_zones.access_logs_bucket_name
}

output "contracts_table_name" {
  description = "DynamoDB table of the dataset contracts."
  value       = module.dynamodb_state.contracts_table_name
}

output "ledger_table_name" {
  description = "DynamoDB table of ingested files."
  value       = module.dynamodb_state.ledger_table_name
}

output "runs_table_name" {
  description = "DynamoDB table of runs and dataset locks."
  value       = module.dynamodb_state.runs_table_name
}

output "glue_database_names" {
  description = "Glue databases of the curated tables."
  value       = module.glue_catalog.database_names
}

# ------------------------------------------------------------------ query, alerts, settings

output "athena_workgroup_name" {
  description = "Athena workgroup to query the curated zone with."
  value       = module.athena.workgroup_name
}

output "athena_query_policy_arn" {
  description = "Managed policy to attach to analysts: query the lake through the workgroup, read only."
  value       = module.athena.query_policy_arn
}

output "sns_topic_arn" {
  description = "SNS topic of the alerts (subscribe more endpoints here)."
  value       = module.sns_alerts.topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the ingest."
  value       = module.monitoring.dashboard_name
}

output "kms_key_arn" {
  description = "Customer-managed KMS key of the lake."
  value       = aws_kms_key.this.arn
}

output "kms_key_alias" {
  description = "Alias of the lake's KMS key."
  value       = aws_kms_alias.this.name
}

output "ssm_parameter_path" {
  description = "Parameter Store path of the environment's settings."
  value       = module.ssm_parameters.path_prefix
}

output "vpc_endpoint_security_group_id" {
  description = "Security group of the interface VPC endpoints (null when create_vpc_endpoints is false)."
  value       = one(module.vpc_endpoints[*].security_group_id)
}
