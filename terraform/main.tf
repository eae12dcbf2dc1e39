# The data lake: zones in S3, state and contracts in DynamoDB, the Glue ingest job in the VPC,
# the Step Functions state machine that runs it, Athena to query, and the alarms around them.
# The Glue job and its artifacts are in glue_jobs.tf.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_vpc" "this" {
  tags = {
    Name = var.vpc_name
  }

  lifecycle {
    # The interface endpoints' private DNS names (glue.<region>.amazonaws.com answering inside the
    # VPC) need both attributes; without them the apply fails half-way.
    postcondition {
      condition     = !var.create_vpc_endpoints || (self.enable_dns_support && self.enable_dns_hostnames)
      error_message = "The VPC needs enableDnsSupport and enableDnsHostnames for the interface endpoints' private DNS (or set create_vpc_endpoints = false)."
    }
  }
}

data "aws_subnets" "private" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.this.id]
  }

  tags = var.private_subnet_tags

  lifecycle {
    postcondition {
      condition     = length(self.ids) > 0
      error_message = "No subnet of VPC ${var.vpc_name} carries the tags in private_subnet_tags."
    }
  }
}

data "aws_subnet" "private" {
  for_each = toset(data.aws_subnets.private.ids)

  id = each.value
}

data "aws_route_tables" "private" {
  vpc_id = data.aws_vpc.this.id

  filter {
    name   = "association.subnet-id"
    values = data.aws_subnets.private.ids
  }

  lifecycle {
    postcondition {
      condition     = length(self.ids) > 0
      error_message = "The private subnets have no explicitly associated route table for the gateway endpoints."
    }
  }
}

# Glue checks when a run starts that the job's subnet reaches S3 (a gateway endpoint or a NAT) and
# fails the run otherwise. The gateway endpoints are added to the route tables found above, which
# are the explicitly associated ones only: the Glue subnet must be among them.
data "aws_route_tables" "glue_subnet" {
  vpc_id = data.aws_vpc.this.id

  filter {
    name   = "association.subnet-id"
    values = [local.private_subnet_ids[0]]
  }

  lifecycle {
    postcondition {
      condition     = !var.create_gateway_endpoints || length(self.ids) == 1
      error_message = "The Glue subnet ${local.private_subnet_ids[0]} (the first private subnet by id) has no explicitly associated route table, so the S3 and DynamoDB gateway endpoints would not reach it: associate one."
    }
  }
}

locals {
  name = "${var.name_prefix}-${var.environment}"

  tags = merge(var.tags, {
    Project     = var.name_prefix
    Environment = var.environment
    ManagedBy   = "terraform"
  })

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # The dataset contracts are the source of truth: they feed the contracts table, the Glue
  # databases and the per-dataset alarms.
  contracts_dir = "${path.root}/../glue_jobs/contracts"
  contracts = [
    for f in fileset(local.contracts_dir, "*.yaml") : yamldecode(file("${local.contracts_dir}/${f}"))
  ]
  dataset_ids    = sort([for c in local.contracts : c.dataset_id if try(c.enabled, true)])
  glue_databases = sort(distinct([for c in local.contracts : c.target.database]))

  # The state machine's execution timeout. One branch of its Map may wait for the dataset's lock
  # (an hour at most by default), retry a refused start (about half an hour) and run the job. The
  # Step Functions task (and the lease the claim step takes on the dataset's lock) covers the run's
  # time in WAITING before it starts (glue_wait_allowance_minutes: Glue's Timeout does not count
  # it), the run itself (glue_timeout_minutes) and five minutes more. The Map runs
  # map_max_concurrency branches at a time, so the enabled datasets pass in waves, and each wave
  # may take a whole branch's time. A standard execution lasts a year at most.
  glue_task_timeout_seconds = (var.glue_wait_allowance_minutes + var.glue_timeout_minutes) * 60 + 300
  ingest_branch_seconds     = local.glue_task_timeout_seconds + var.lock_wait_seconds * var.lock_max_waits + 1800
  ingest_waves              = max(1, ceil(length(local.dataset_ids) / var.map_max_concurrency))
  execution_timeout_seconds = min(31536000, max(28800, local.ingest_branch_seconds * local.ingest_waves))

  metrics_namespace = "DataLake/Ingest"

  # One subnet per availability zone for the interface endpoints; the first one for Glue.
  private_subnet_ids = sort(data.aws_subnets.private.ids)
  subnets_by_az      = { for s in data.aws_subnet.private : s.availability_zone => s.id... }
  endpoint_subnets   = [for az in sort(keys(local.subnets_by_az)) : sort(local.subnets_by_az[az])[0]]
}

# --------------------------------------------------------------------------- encryption

# One customer-managed key for the lake's data at rest. The account root statement hands
# control to IAM (roles get kms:* only through their policies); the service statements let
# CloudWatch Logs encrypt log groups, let CloudWatch alarms and EventBridge publish to the
# encrypted SNS topic (SNS asks KMS on their behalf, so IAM policies cannot grant it), and let
# the log delivery service decrypt the execution data of the state machine, which is encrypted
# with this key, before it writes it to the state machine's log group (Step Functions, "Data at
# rest encryption": a customer managed key with CloudWatch Logs logging needs this statement).
# Against the confused deputy, the service statements are confined to this account: by
# aws:SourceAccount, or by the encryption context (logs, EventBridge).
# S3, DynamoDB, Secrets Manager, SSM, Glue, Athena and Step Functions use the key through the
# caller's IAM permissions.
resource "aws_kms_key" "this" {
  description             = "${local.name}: data lake encryption (S3, DynamoDB, SNS, logs, Glue, Athena, Secrets Manager, SSM)"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.aws_region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        Sid       = "AlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
      # EventBridge gets no aws:SourceAccount condition: its KMS requests through SNS to an
      # encrypted topic are reported not to carry the aws:Source* keys, so the condition would drop
      # every Glue failure notification without an error. The SNS encryption context confines
      # it to topics of this account instead.
      {
        Sid       = "EventsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:sns:topicArn" = "arn:${local.partition}:sns:${var.aws_region}:${local.account_id}:*"
          }
        }
      },
      {
        Sid       = "LogDeliveryReadsStateMachineExecutionData"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action    = "kms:Decrypt"
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })

  tags = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}-lake"
  target_key_id = aws_kms_key.this.key_id
}

# --------------------------------------------------------------------------- storage and state

module "s3_zones" {
  source = "./modules/s3_zones"

  name                      = local.name
  kms_key_arn               = aws_kms_key.this.arn
  raw_transition_days       = var.raw_transition_days
  raw_glacier_days          = var.raw_glacier_days
  raw_archive_storage_class = var.raw_archive_storage_class
  enable_force_destroy      = var.enable_force_destroy
  tags                      = local.tags
}

module "dynamodb_state" {
  source = "./modules/dynamodb_state"

  name                       = local.name
  kms_key_arn                = aws_kms_key.this.arn
  contracts_dir              = local.contracts_dir
  enable_deletion_protection = !var.enable_force_destroy
  tags                       = local.tags
}

module "glue_catalog" {
  source = "./modules/glue_catalog"

  database_names            = local.glue_databases
  curated_bucket_name       = module.s3_zones.curated_bucket_name
  kms_key_arn               = aws_kms_key.this.arn
  enable_catalog_encryption = var.enable_catalog_encryption
  tags                      = local.tags
}

# --------------------------------------------------------------------------- network

module "vpc_endpoints" {
  source = "./modules/vpc_endpoints"
  count  = var.create_vpc_endpoints ? 1 : 0

  name            = local.name
  region          = var.aws_region
  vpc_id          = data.aws_vpc.this.id
  vpc_cidr_block  = data.aws_vpc.this.cidr_block
  subnet_ids      = local.endpoint_subnets
  route_table_ids = data.aws_route_tables.private.ids
  # The JDBC connection's credentials are in Secrets Manager: only then does the VPC need it.
  create_secretsmanager_endpoint = var.onprem_jdbc_url != ""
  create_gateway_endpoints       = var.create_gateway_endpoints
  tags                           = local.tags
}

# --------------------------------------------------------------------------- orchestration

module "sns_alerts" {
  source = "./modules/sns_alerts"

  name        = "${local.name}-alerts"
  kms_key_arn = aws_kms_key.this.arn
  alarm_email = var.alarm_email
  tags        = local.tags
}

module "state_machine" {
  source = "./modules/state_machine"

  name                 = "${local.name}-ingest"
  region               = var.aws_region
  glue_job_name        = module.glue_ingest_job.job_name
  contracts_table_name = module.dynamodb_state.contracts_table_name
  contracts_table_arn  = module.dynamodb_state.contracts_table_arn
  ledger_table_name    = module.dynamodb_state.ledger_table_name
  ledger_table_arn     = module.dynamodb_state.ledger_table_arn
  runs_table_name      = module.dynamodb_state.runs_table_name
  runs_table_arn       = module.dynamodb_state.runs_table_arn
  sns_topic_arn        = module.sns_alerts.topic_arn
  kms_key_arn          = aws_kms_key.this.arn
  raw_bucket_name      = module.s3_zones.raw_bucket_name
  max_concurrency      = var.map_max_concurrency
  lock_wait_seconds    = var.lock_wait_seconds
  lock_max_waits       = var.lock_max_waits
  # The Step Functions task (and the claim's lease) waits for the run's time in WAITING and a little
  # longer than the Glue job may run; the execution outlasts every wave of branches.
  glue_task_timeout_seconds = local.glue_task_timeout_seconds
  execution_timeout_seconds = local.execution_timeout_seconds
  schedule_expression       = var.schedule_expression
  log_retention_days        = var.log_retention_days
  tags                      = local.tags
}

# A warning at plan time, not an error: the history cap is only reached when every dataset's
# branch waits out its lock, which a stuck run of each would cause.
check "ingest_history_room" {
  assert {
    condition     = length(local.dataset_ids) * module.state_machine.history_events_per_waiting_branch <= 24900
    error_message = "With ${length(local.dataset_ids)} enabled datasets, a scheduled execution in which every dataset waits out its lock would pass the 25,000 events of a Step Functions history and fail (its files wait for the next trigger). Fewer waits for the lock (lock_max_waits; a longer lock_wait_seconds keeps the time they cover) leave more room."
  }
}

# --------------------------------------------------------------------------- query and observe

module "athena" {
  source = "./modules/athena"

  name                           = local.name
  region                         = var.aws_region
  results_bucket_name            = module.s3_zones.athena_results_bucket_name
  readable_bucket_names          = { curated = module.s3_zones.curated_bucket_name, quarantine = module.s3_zones.quarantine_bucket_name }
  glue_database_names            = local.glue_databases
  kms_key_arn                    = aws_kms_key.this.arn
  bytes_scanned_cutoff_per_query = var.athena_bytes_scanned_cutoff
  enable_force_destroy           = var.enable_force_destroy
  tags                           = local.tags
}

module "monitoring" {
  source = "./modules/monitoring"

  name                       = local.name
  region                     = var.aws_region
  sns_topic_arn              = module.sns_alerts.topic_arn
  state_machine_arn          = module.state_machine.state_machine_arn
  event_rule_names           = module.state_machine.event_rule_names
  glue_job_name              = module.glue_ingest_job.job_name
  dataset_ids                = local.dataset_ids
  metrics_namespace          = local.metrics_namespace
  quarantine_ratio_threshold = var.quarantine_ratio_threshold
  files_pending_alarm_days   = var.files_pending_alarm_days
  tags                       = local.tags
}

module "ssm_parameters" {
  source = "./modules/ssm_parameters"

  path_prefix = "/${var.name_prefix}/${var.environment}"
  kms_key_arn = aws_kms_key.this.arn
  parameters = {
    "raw_uri"               = "s3://${module.s3_zones.raw_bucket_name}"
    "curated_uri"           = "s3://${module.s3_zones.curated_bucket_name}"
    "quarantine_uri"        = "s3://${module.s3_zones.quarantine_bucket_name}"
    "scripts_bucket"        = module.s3_zones.scripts_bucket_name
    "athena_results_bucket" = module.s3_zones.athena_results_bucket_name
    "contracts_table"       = module.dynamodb_state.contracts_table_name
    "ledger_table"          = module.dynamodb_state.ledger_table_name
    "runs_table"            = module.dynamodb_state.runs_table_name
    "glue_job_name"         = module.glue_ingest_job.job_name
    "athena_workgroup"      = module.athena.workgroup_name
    "sns_topic_arn"         = module.sns_alerts.topic_arn
    "metrics_namespace"     = local.metrics_namespace
    "state_machine_arn"     = module.state_machine.state_machine_arn
  }
  tags = local.tags
}
