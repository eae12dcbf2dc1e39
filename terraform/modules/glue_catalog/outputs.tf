output "database_names" {
  description = "Names of the Glue databases created."
  value       = sort([for d in aws_glue_catalog_database.this : d.name])
}

output "database_arns" {
  description = "ARN of each Glue database, by name."
  value       = { for name, d in aws_glue_catalog_database.this : name => d.arn }
}

output "catalog_encryption_enabled" {
  description = "Whether this stack manages the Data Catalog encryption settings."
  value       = length(aws_glue_data_catalog_encryption_settings.this) > 0
}
