output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_arns" {
  description = "ARNs of every alarm the module creates."
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.state_machine : a.arn],
    [for a in aws_cloudwatch_metric_alarm.trigger_failed : a.arn],
    [for a in aws_cloudwatch_metric_alarm.run_failed : a.arn],
    [for a in aws_cloudwatch_metric_alarm.quarantine_ratio : a.arn],
  )
}

output "glue_failure_rule_arn" {
  description = "ARN of the EventBridge rule that reports failed Glue job runs."
  value       = aws_cloudwatch_event_rule.glue_job_failed.arn
}
