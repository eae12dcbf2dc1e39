# The Glue databases of the curated zone. Tables and partitions are not declared here: the
# ingest job creates and evolves them from the contracts and registers partitions at commit.

data "aws_caller_identity" "current" {}

resource "aws_glue_catalog_database" "this" {
  for_each = toset(var.database_names)

  name         = each.value
  description  = "Data lake curated zone: tables written by the ingest job"
  location_uri = "s3://${var.curated_bucket_name}/${each.value}/"
  tags         = var.tags
}

# Account-wide (one per account and region): metadata at rest and connection passwords are
# encrypted with the lake key. Every principal that reads the catalog (Glue, Athena users)
# then needs kms:Decrypt on that key.
resource "aws_glue_data_catalog_encryption_settings" "this" {
  count = var.enable_catalog_encryption ? 1 : 0

  catalog_id = data.aws_caller_identity.current.account_id

  data_catalog_encryption_settings {
    encryption_at_rest {
      catalog_encryption_mode = "SSE-KMS"
      sse_aws_kms_key_id      = var.kms_key_arn
    }

    connection_password_encryption {
      return_connection_password_encrypted = true
      aws_kms_key_id                       = var.kms_key_arn
    }
  }
}
