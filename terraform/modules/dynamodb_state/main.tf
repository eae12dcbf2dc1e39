# The job's state in DynamoDB: contracts (one item per dataset, loaded from git), the file
# ledger (one item per ingested raw file) and the runs (one item per run, plus the dataset lock).
# Key attribute names match lake_ingest.local.aws_setup.TABLE_KEYS.

locals {
  tables = {
    contracts = { name = "${var.name}-contracts", hash_key = "dataset_id", range_key = null }
    ledger    = { name = "${var.name}-file-ledger", hash_key = "dataset_id", range_key = "file_id" }
    runs      = { name = "${var.name}-runs", hash_key = "dataset_id", range_key = "run_id" }
  }

  # File name (without .yaml) => contract document, exactly as the job's loader reads it.
  contracts = {
    for f in fileset(var.contracts_dir, "*.yaml") :
    trimsuffix(f, ".yaml") => yamldecode(file("${var.contracts_dir}/${f}"))
  }

  # Every table a contract writes: its own and its quarantine table. Two datasets writing one
  # table would delete each other's rows (a run clears its run id's prefix of its tables).
  contract_tables = flatten([
    for c in values(local.contracts) : [
      "${c.target.database}.${c.target.table}", "${c.target.database}.${c.target.table}_quarantine"
    ]
  ])
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = each.value.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.enable_deletion_protection

  attribute {
    name = each.value.hash_key
    type = "S"
  }

  dynamic "attribute" {
    for_each = each.value.range_key == null ? [] : [each.value.range_key]
    content {
      name = attribute.value
      type = "S"
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = merge(var.tags, { Name = each.value.name })
}

# One item per contract, in the shape lake_ingest.contract_item() writes: dataset_id, enabled
# and version as top-level attributes for the orchestration, the whole contract as JSON in
# "document" for the job. Editing a YAML file and applying updates the item.
resource "aws_dynamodb_table_item" "contract" {
  for_each = local.contracts

  table_name = aws_dynamodb_table.this["contracts"].name
  hash_key   = aws_dynamodb_table.this["contracts"].hash_key

  item = jsonencode({
    dataset_id = { S = each.value.dataset_id }
    enabled    = { BOOL = try(each.value.enabled, true) }
    version    = { N = tostring(try(each.value.version, 1)) }
    document   = { S = jsonencode(each.value) }
  })

  lifecycle {
    precondition {
      condition     = each.value.dataset_id == each.key
      error_message = "Contract file ${each.key}.yaml must hold dataset_id ${each.key} (the job's loader has the same rule)."
    }
    precondition {
      condition     = length(distinct(local.contract_tables)) == length(local.contract_tables)
      error_message = "Two contracts write the same table, or one's table is another's quarantine table; every dataset needs a table of its own (the job's loader has the same rule)."
    }
    # The job accepts another bucket by name, but this deployment grants the Glue role, the S3
    # endpoint policy and the trigger rule the raw bucket only: such a dataset would fail on AWS.
    precondition {
      condition     = try(each.value.source.bucket, "raw") == "raw"
      error_message = "Contract ${each.key} reads from bucket ${try(each.value.source.bucket, "raw")}; this deployment reads the raw zone only (source.bucket: raw). Deliver its files there, or extend the Glue role, the S3 endpoint policy and the trigger rule first."
    }
  }
}
