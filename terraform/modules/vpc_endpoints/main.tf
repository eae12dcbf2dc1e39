# Private paths from the VPC to the AWS services the ingest job uses, so the Glue job needs no
# NAT gateway and no internet route: gateway endpoints for S3 and DynamoDB (free), interface
# endpoints for the rest. The endpoint policies form a data perimeter: only principals of this
# account, and (for S3 and DynamoDB) only resources of this account. A gateway endpoint serves
# every subnet of its route tables: in a VPC shared with other workloads, its perimeter applies to
# them too (create_gateway_endpoints = false keeps the VPC's own endpoints instead).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id

  s3_read_only_bucket_arns = coalesce(var.s3_read_only_bucket_arns, ["arn:${data.aws_partition.current.partition}:s3:::aws-glue-*"])

  interface_services = distinct(concat(
    var.interface_services,
    var.create_secretsmanager_endpoint ? ["secretsmanager"] : [],
  ))

  # Endpoint service name => IAM action prefix.
  action_prefix = {
    glue           = "glue"
    logs           = "logs"
    monitoring     = "cloudwatch"
    kms            = "kms"
    secretsmanager = "secretsmanager"
    ssm            = "ssm"
    sts            = "sts"
    states         = "states"
    events         = "events"
    sns            = "sns"
    athena         = "athena"
  }
}

# --------------------------------------------------------------------------- gateway endpoints

data "aws_iam_policy_document" "s3" {
  statement {
    sid       = "OwnAccountBuckets"
    actions   = ["s3:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "ReadServiceBuckets"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = flatten([for b in local.s3_read_only_bucket_arns : [b, "${b}/*"]])

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_vpc_endpoint" "s3" {
  count = var.create_gateway_endpoints ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  policy            = data.aws_iam_policy_document.s3.json
  tags              = merge(var.tags, { Name = "${var.name}-s3" })
}

data "aws_iam_policy_document" "dynamodb" {
  statement {
    sid       = "OwnAccountTables"
    actions   = ["dynamodb:*"]
    resources = ["arn:${data.aws_partition.current.partition}:dynamodb:${var.region}:${local.account_id}:table/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_vpc_endpoint" "dynamodb" {
  count = var.create_gateway_endpoints ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${var.region}.dynamodb"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  policy            = data.aws_iam_policy_document.dynamodb.json
  tags              = merge(var.tags, { Name = "${var.name}-dynamodb" })
}

# --------------------------------------------------------------------------- interface endpoints

# name_prefix, not name: a replacement (create_before_destroy) creates the new group while the
# old one, with its name, still exists.
resource "aws_security_group" "endpoints" {
  name_prefix = "${var.name}-vpc-endpoints-"
  description = "Interface VPC endpoints: HTTPS from inside the VPC"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-vpc-endpoints" })

  ingress {
    description = "HTTPS from the VPC"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = [var.vpc_cidr_block]
  }

  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "interface" {
  for_each = toset(local.interface_services)

  statement {
    sid       = "OwnAccountPrincipals"
    actions   = ["${local.action_prefix[each.value]}:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = toset(local.interface_services)

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${var.region}.${each.value}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = var.enable_private_dns
  policy              = data.aws_iam_policy_document.interface[each.value].json
  tags                = merge(var.tags, { Name = "${var.name}-${each.value}" })
}
