# The lake's buckets: raw (files as delivered), curated (Parquet tables), quarantine (rejected
# rows), scripts (Glue job artifacts and temp files), athena_results (query output), plus one
# bucket that receives the S3 server access logs of the five.

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id

  # zone key (used in outputs and for_each) => bucket name part (bucket names allow no "_")
  zones = {
    raw            = "raw"
    curated        = "curated"
    quarantine     = "quarantine"
    scripts        = "scripts"
    athena_results = "athena-results"
  }
  bucket_names    = { for zone, part in local.zones : zone => "${var.name}-${part}-${local.account_id}" }
  log_bucket_name = "${var.name}-access-logs-${local.account_id}"

  # Zones whose current objects expire; the others keep data until someone decides otherwise.
  expiration_days = {
    quarantine     = var.quarantine_expiration_days
    athena_results = var.athena_results_expiration_days
  }

  # Raw files are read once by the ingest job and kept for replay: cheaper tiers as they age.
  raw_transitions = [
    { days = var.raw_transition_days, storage_class = "STANDARD_IA" },
    { days = var.raw_glacier_days, storage_class = var.raw_archive_storage_class },
  ]
}

# --------------------------------------------------------------------------- zone buckets

resource "aws_s3_bucket" "zone" {
  for_each = local.bucket_names

  bucket        = each.value
  force_destroy = var.enable_force_destroy
  tags          = merge(var.tags, { Zone = each.key })

  #checkov:skip=CKV_AWS_144: Cross-region replication doubles storage cost; raw files can be re-sent from the on-premise site, curated is rebuilt from raw, and versioning plus a 30-day KMS deletion window cover accidental deletes.
}

resource "aws_s3_bucket_versioning" "zone" {
  for_each = aws_s3_bucket.zone

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "zone" {
  for_each = aws_s3_bucket.zone

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket instead of one KMS call per object: cheaper at Spark's object counts.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "zone" {
  for_each = aws_s3_bucket.zone

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "zone" {
  for_each = aws_s3_bucket.zone

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "zone" {
  for_each = aws_s3_bucket.zone

  bucket        = each.value.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.value.id}/"

  # Logging is switched on once the access-log bucket grants the logging service its writes
  # (the order AWS documents; an emulator that checks the grant refuses it otherwise).
  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "zone" {
  for_each = aws_s3_bucket.zone

  bucket = each.value.id

  rule {
    id     = "${each.key}-housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    dynamic "expiration" {
      for_each = contains(keys(local.expiration_days), each.key) ? [local.expiration_days[each.key]] : []
      content {
        days = expiration.value
      }
    }

    dynamic "transition" {
      for_each = each.key == "raw" ? local.raw_transitions : []
      content {
        days          = transition.value.days
        storage_class = transition.value.storage_class
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.raw_glacier_days >= var.raw_transition_days + 30
      error_message = "raw_glacier_days must be at least raw_transition_days + 30 (objects stay 30 days in STANDARD_IA)."
    }
  }

  depends_on = [aws_s3_bucket_versioning.zone]
}

# The raw bucket sends "Object Created" events to EventBridge, where the state machine's rule
# starts an ingest. The other zones send theirs too: free on the default bus, and ready for
# rules such as "a file landed in quarantine".
resource "aws_s3_bucket_notification" "zone" {
  for_each = aws_s3_bucket.zone

  bucket      = each.value.id
  eventbridge = true
}

data "aws_iam_policy_document" "zone" {
  for_each = aws_s3_bucket.zone

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # A put without an encryption header gets the bucket default (SSE-KMS with the lake key), so
  # every object is KMS-encrypted. A put that asks for something else (AES256, another KMS key)
  # is refused. The Null conditions keep header-less puts working: a negated operator alone
  # would be true for a missing header and deny them too.
  statement {
    sid       = "DenyNonKmsEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKmsKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [var.kms_key_arn]
    }
  }
}

resource "aws_s3_bucket_policy" "zone" {
  for_each = aws_s3_bucket.zone

  bucket = each.value.id
  policy = data.aws_iam_policy_document.zone[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.zone]
}

# --------------------------------------------------------------------------- access log bucket

resource "aws_s3_bucket" "access_logs" {
  bucket        = local.log_bucket_name
  force_destroy = var.enable_force_destroy
  tags          = merge(var.tags, { Zone = "access-logs" })

  #checkov:skip=CKV_AWS_18: This is the access-log target bucket; logging it would need yet another bucket (or log into itself, which AWS advises against).
  #checkov:skip=CKV_AWS_144: Access logs are audit data of this region's buckets; a replica doubles cost without protecting the lake itself.
  #checkov:skip=CKV_AWS_145: S3 server access logging only delivers to buckets encrypted with SSE-S3; SSE-KMS is not supported for the target bucket.
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    expiration {
      days = var.access_log_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_notification" "access_logs" {
  bucket      = aws_s3_bucket.access_logs.id
  eventbridge = true
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Server access log delivery, only for the zone buckets of this account.
  statement {
    sid       = "AllowS3ServerAccessLogs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for b in aws_s3_bucket.zone : b.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
