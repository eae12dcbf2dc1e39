output "workgroup_name" {
  description = "Name of the Athena workgroup."
  value       = aws_athena_workgroup.this.name
}

output "workgroup_arn" {
  description = "ARN of the Athena workgroup."
  value       = aws_athena_workgroup.this.arn
}

output "output_location" {
  description = "S3 location of the query results."
  value       = "s3://${var.results_bucket_name}/results/"
}

output "query_policy_arn" {
  description = "ARN of the managed policy that lets an analyst query the lake through the workgroup."
  value       = aws_iam_policy.query.arn
}
