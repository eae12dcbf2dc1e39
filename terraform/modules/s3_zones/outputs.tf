output "bucket_names" {
  description = "Bucket name of each zone (raw, curated, quarantine, scripts, athena_results)."
  value       = { for zone, b in aws_s3_bucket.zone : zone => b.bucket }
}

output "bucket_arns" {
  description = "Bucket ARN of each zone (raw, curated, quarantine, scripts, athena_results)."
  value       = { for zone, b in aws_s3_bucket.zone : zone => b.arn }
}

output "raw_bucket_name" {
  description = "Raw zone bucket: files as delivered from the on-premise site."
  value       = aws_s3_bucket.zone["raw"].bucket
}

output "curated_bucket_name" {
  description = "Curated zone bucket: Parquet tables registered in the Glue Data Catalog."
  value       = aws_s3_bucket.zone["curated"].bucket
}

output "quarantine_bucket_name" {
  description = "Quarantine zone bucket: rejected rows with the rules they broke."
  value       = aws_s3_bucket.zone["quarantine"].bucket
}

output "scripts_bucket_name" {
  description = "Artifacts bucket: Glue job script, dependency zip and Glue temp files."
  value       = aws_s3_bucket.zone["scripts"].bucket
}

output "athena_results_bucket_name" {
  description = "Bucket of Athena query results."
  value       = aws_s3_bucket.zone["athena_results"].bucket
}

output "access_logs_bucket_name" {
  description = "Bucket receiving the S3 server access logs of the zone buckets."
  value       = aws_s3_bucket.access_logs.bucket
}
