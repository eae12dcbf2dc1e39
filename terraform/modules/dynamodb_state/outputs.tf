output "contracts_table_name" {
  description = "Name of the contracts table (hash key dataset_id)."
  value       = aws_dynamodb_table.this["contracts"].name
}

output "contracts_table_arn" {
  description = "ARN of the contracts table."
  value       = aws_dynamodb_table.this["contracts"].arn
}

output "ledger_table_name" {
  description = "Name of the file ledger table (hash key dataset_id, range key file_id)."
  value       = aws_dynamodb_table.this["ledger"].name
}

output "ledger_table_arn" {
  description = "ARN of the file ledger table."
  value       = aws_dynamodb_table.this["ledger"].arn
}

output "runs_table_name" {
  description = "Name of the runs table (hash key dataset_id, range key run_id)."
  value       = aws_dynamodb_table.this["runs"].name
}

output "runs_table_arn" {
  description = "ARN of the runs table."
  value       = aws_dynamodb_table.this["runs"].arn
}

output "dataset_ids" {
  description = "Dataset ids of the contracts loaded into the contracts table."
  value       = sort([for c in local.contracts : c.dataset_id])
}
