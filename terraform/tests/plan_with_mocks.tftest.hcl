# A plan and an apply of the whole stack against a mocked AWS provider: every expression,
# for_each and precondition is evaluated, and no AWS account is needed. Needs the providers
# installed: `terraform init -backend=false && terraform test` (CodeBuild, or any machine that
# reaches the Terraform registry). Mock values are only set where the provider validates them.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_vpc" {
    defaults = { id = "vpc-123", cidr_block = "10.0.0.0/16", enable_dns_support = true, enable_dns_hostnames = true }
  }
  mock_data "aws_subnets" {
    defaults = { ids = ["subnet-b", "subnet-a"] }
  }
  mock_data "aws_subnet" {
    defaults = { availability_zone = "eu-west-1a", arn = "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-a",
    cidr_block = "10.0.1.0/24" }
  }
  mock_data "aws_route_tables" {
    defaults = { ids = ["rtb-1"] }
  }
  mock_data "aws_prefix_list" {
    defaults = { id = "pl-123" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/abc" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/datalake-dev-ingest-glue" }
  }
  mock_resource "aws_security_group" {
    defaults = { arn = "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1", id = "sg-1" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:datalake-dev-ingest/onprem-db-AbCdEf" }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/t" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::b" }
  }
  mock_resource "aws_cloudwatch_metric_alarm" {
    defaults = { arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:g" }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:datalake-dev-ingest" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:datalake-dev-alerts" }
  }
}

variables {
  environment      = "dev"
  vpc_name         = "corp"
  on_premise_cidrs = ["10.20.0.0/16"]
  onprem_jdbc_url  = "jdbc:postgresql://db.onprem:5432/erp"
  alarm_email      = "team@example.com"
}

run "apply_with_mocks" {
  command = apply

  assert {
    condition     = output.raw_bucket_name == "datalake-dev-raw-123456789012"
    error_message = "Buckets are named <prefix>-<env>-<zone>-<account>."
  }
  assert {
    condition     = output.athena_results_bucket_name == "datalake-dev-athena-results-123456789012"
    error_message = "Bucket names use dashes (athena-results)."
  }
  assert {
    condition     = length(module.monitoring.alarm_arns) == 4 + 4 * length(module.dynamodb_state.dataset_ids)
    error_message = "Two state machine alarms, one per trigger rule (two), plus four per dataset (run failed, files failed, files pending, quarantine ratio)."
  }
  assert {
    condition     = length(module.glue_catalog.database_names) > 0 && length(module.glue_catalog.database_names) <= length(module.dynamodb_state.dataset_ids)
    error_message = "One Glue database per distinct target.database of the contracts."
  }
  assert {
    condition     = module.glue_ingest_job.default_arguments["--lock_lease_seconds"] == "7200"
    error_message = "The lock lease equals the job timeout (120 min)."
  }
  assert {
    condition     = module.glue_ingest_job.default_arguments["--raw_uri"] == "s3://datalake-dev-raw-123456789012"
    error_message = "The job reads the raw bucket."
  }
  assert {
    condition     = module.glue_ingest_job.jdbc_connection_name == "datalake-dev-ingest-onprem-db"
    error_message = "A JDBC URL creates the JDBC connection."
  }
  assert {
    condition     = length(module.dynamodb_state.dataset_ids) == length(fileset("${path.root}/../glue_jobs/contracts", "*.yaml"))
    error_message = "One contract item per contract file."
  }
  assert {
    condition     = sort(keys(module.vpc_endpoints[0].interface_endpoint_ids)) == sort(["glue", "logs", "monitoring", "kms", "sts", "secretsmanager"])
    error_message = "Interface endpoints: what the job in the VPC calls, and Secrets Manager because a JDBC URL is set."
  }
}

run "endpoints_need_vpc_dns" {
  command = plan
  override_data {
    target = data.aws_vpc.this
    values = { id = "vpc-123", cidr_block = "10.0.0.0/16", enable_dns_support = true, enable_dns_hostnames = false }
  }
  expect_failures = [data.aws_vpc.this]
}

run "files_pending_alarm_within_a_week" {
  command = plan
  variables {
    files_pending_alarm_days = 8
  }
  expect_failures = [var.files_pending_alarm_days]
}

run "glue_subnet_needs_its_own_route_table" {
  command = plan
  override_data {
    target = data.aws_route_tables.glue_subnet
    values = { ids = [] }
  }
  expect_failures = [data.aws_route_tables.glue_subnet]
}

run "defaults_no_jdbc_no_endpoints" {
  command = plan
  variables {
    onprem_jdbc_url      = ""
    create_vpc_endpoints = false
    alarm_email          = ""
  }
  override_data {
    target = data.aws_vpc.this
    values = { id = "vpc-123", cidr_block = "10.0.0.0/16", enable_dns_support = false, enable_dns_hostnames = false }
  }
  assert {
    condition     = output.vpc_endpoint_security_group_id == null
    error_message = "create_vpc_endpoints = false creates no endpoints (and needs no VPC DNS)."
  }
  assert {
    condition     = output.glue_subnet_cidr_block == "10.0.1.0/24"
    error_message = "The Glue subnet's CIDR is what the on-premise firewall allows."
  }
}

run "flex_needs_small_workers" {
  command = plan
  module {
    source = "./modules/glue_ingest_job"
  }
  variables {
    name            = "x-ingest"
    region          = "eu-west-1"
    script_location = "s3://x-scripts/s.py"
    extra_py_files  = "s3://x-scripts/z.zip"
    temp_dir        = "s3://x-scripts/tmp/"
    bucket_names    = { raw = "x-raw", curated = "x-cur", quarantine = "x-q", scripts = "x-scripts" }
    dynamodb_tables = {
      contracts = { name = "c", arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/c" }
      ledger    = { name = "l", arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/l" }
      runs      = { name = "r", arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/r" }
    }
    glue_database_names = ["sales"]
    kms_key_arn         = "arn:aws:kms:eu-west-1:123456789012:key/abc"
    vpc_id              = "vpc-1"
    vpc_cidr_block      = "10.0.0.0/16"
    subnet_id           = "subnet-a"
    execution_class     = "FLEX"
    worker_type         = "G.4X"
  }
  expect_failures = [aws_glue_job.this]
}

run "glacier_after_ia" {
  command = plan
  module {
    source = "./modules/s3_zones"
  }
  variables {
    name                = "x"
    kms_key_arn         = "arn:aws:kms:eu-west-1:123456789012:key/abc"
    raw_transition_days = 60
    raw_glacier_days    = 70
  }
  expect_failures = [aws_s3_bucket_lifecycle_configuration.zone]
}

run "bad_worker_type" {
  command = plan
  variables {
    glue_worker_type = "G.3X"
  }
  expect_failures = [var.glue_worker_type]
}
