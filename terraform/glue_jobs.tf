# The Glue ingest job and its artifacts (the starter's glue_jobs.tf): the entry script and a zip
# of the lake_ingest package go to the scripts bucket; the job takes the zip as --extra-py-files.

locals {
  glue_jobs_dir = "${path.root}/../glue_jobs"

  # The package as the job imports it (lake_ingest/...), without the laptop-only lake_ingest/local/
  # (emulator, demo, sample data) and without __pycache__ (only *.py files are taken).
  lake_ingest_files = sort([
    for f in fileset(local.glue_jobs_dir, "lake_ingest/**/*.py") : f
    if !startswith(f, "lake_ingest/local/")
  ])

  glue_artifacts_prefix = "glue/ingest"
}

data "archive_file" "lake_ingest" {
  type        = "zip"
  output_path = "${path.root}/.build/lake_ingest.zip"

  dynamic "source" {
    for_each = local.lake_ingest_files
    content {
      content  = file("${local.glue_jobs_dir}/${source.value}")
      filename = source.value
    }
  }
}

# source_hash, not etag: with SSE-KMS the ETag S3 reports is not the MD5 of the content, so an
# etag = filemd5(...) would show a change on every plan.
resource "aws_s3_object" "glue_ingest_script" {
  bucket                 = module.s3_zones.scripts_bucket_name
  key                    = "${local.glue_artifacts_prefix}/glue_ingest_job.py"
  source                 = "${local.glue_jobs_dir}/glue_ingest_job.py"
  source_hash            = filemd5("${local.glue_jobs_dir}/glue_ingest_job.py")
  content_type           = "text/x-python"
  server_side_encryption = "aws:kms"
  kms_key_id             = aws_kms_key.this.arn
  bucket_key_enabled     = true
  tags                   = local.tags
}

resource "aws_s3_object" "lake_ingest_zip" {
  bucket                 = module.s3_zones.scripts_bucket_name
  key                    = "${local.glue_artifacts_prefix}/lake_ingest.zip"
  source                 = data.archive_file.lake_ingest.output_path
  source_hash            = data.archive_file.lake_ingest.output_md5
  content_type           = "application/zip"
  server_side_encryption = "aws:kms"
  kms_key_id             = aws_kms_key.this.arn
  bucket_key_enabled     = true
  tags                   = local.tags
}

module "glue_ingest_job" {
  source = "./modules/glue_ingest_job"

  name   = "${local.name}-ingest"
  region = var.aws_region

  script_location = "s3://${aws_s3_object.glue_ingest_script.bucket}/${aws_s3_object.glue_ingest_script.key}"
  extra_py_files  = "s3://${aws_s3_object.lake_ingest_zip.bucket}/${aws_s3_object.lake_ingest_zip.key}"
  temp_dir        = "s3://${module.s3_zones.scripts_bucket_name}/glue/tmp/"

  bucket_names = {
    raw        = module.s3_zones.raw_bucket_name
    curated    = module.s3_zones.curated_bucket_name
    quarantine = module.s3_zones.quarantine_bucket_name
    scripts    = module.s3_zones.scripts_bucket_name
  }
  dynamodb_tables = {
    contracts = { name = module.dynamodb_state.contracts_table_name, arn = module.dynamodb_state.contracts_table_arn }
    ledger    = { name = module.dynamodb_state.ledger_table_name, arn = module.dynamodb_state.ledger_table_arn }
    runs      = { name = module.dynamodb_state.runs_table_name, arn = module.dynamodb_state.runs_table_arn }
  }
  glue_database_names = module.glue_catalog.database_names
  kms_key_arn         = aws_kms_key.this.arn
  metrics_namespace   = local.metrics_namespace
  log_retention_days  = var.log_retention_days

  worker_type         = var.glue_worker_type
  number_of_workers   = var.glue_number_of_workers
  execution_class     = var.glue_execution_class
  enable_auto_scaling = var.enable_glue_auto_scaling
  timeout_minutes     = var.glue_timeout_minutes
  # One run per dataset at a time (the dataset lock), so every enabled dataset may run at once: a
  # start beyond the job's limit fails, and its execution with an alert.
  max_concurrent_runs = max(var.glue_max_concurrent_runs, length(local.dataset_ids))

  vpc_id                 = data.aws_vpc.this.id
  vpc_cidr_block         = data.aws_vpc.this.cidr_block
  subnet_id              = local.private_subnet_ids[0]
  on_premise_cidrs       = var.on_premise_cidrs
  onprem_db_port         = var.onprem_db_port
  create_jdbc_connection = var.onprem_jdbc_url != ""
  jdbc_url               = var.onprem_jdbc_url

  tags = local.tags
}
