output "parameter_names" {
  description = "Full name of each parameter, by key."
  value       = { for k, p in aws_ssm_parameter.this : k => p.name }
}

output "parameter_arns" {
  description = "ARN of each parameter, by key."
  value       = { for k, p in aws_ssm_parameter.this : k => p.arn }
}

output "path_prefix" {
  description = "Path the parameters live under (read them all with get-parameters-by-path --recursive --with-decryption)."
  value       = var.path_prefix
}
