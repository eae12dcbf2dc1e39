output "state_machine_arn" {
  description = "ARN of the ingest state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the ingest state machine."
  value       = aws_sfn_state_machine.this.name
}

output "planner_function_name" {
  description = "Name of the planner Lambda that maps a trigger to the datasets to run."
  value       = aws_lambda_function.this["plan"].function_name
}

output "claim_function_name" {
  description = "Name of the Lambda that, before each Glue run, skips a file already read or takes or waits for the dataset's lock."
  value       = aws_lambda_function.this["claim"].function_name
}

output "log_group_name" {
  description = "Log group of the state machine's executions."
  value       = aws_cloudwatch_log_group.state_machine.name
}

output "event_rule_names" {
  description = "The trigger rules by kind: object_created (S3 Object Created) and schedule (time-based)."
  value = {
    object_created = aws_cloudwatch_event_rule.object_created.name
    schedule       = aws_cloudwatch_event_rule.schedule.name
  }
}

output "history_events_per_waiting_branch" {
  description = "History events of one Map branch that waits lock_max_waits turns for its dataset's lock, then gives up: 13 a turn and 27 besides (counted in the emulator's history). Step Functions caps an execution's history at 25,000 events."
  value       = 27 + 13 * var.lock_max_waits
}
