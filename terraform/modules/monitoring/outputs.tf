output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_arns" {
  description = "ARNs of every alarm the module creates."
  value       = local.alarm_arns # the dashboard shows the same list
}

output "glue_failure_rule_arn" {
  description = "ARN of the EventBridge rule that reports failed Glue job runs."
  value       = aws_cloudwatch_event_rule.glue_job_failed.arn
}
