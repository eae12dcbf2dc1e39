# The alert topic: CloudWatch alarms, the EventBridge rule on Glue job failures and the state
# machine (through its own role) publish here.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
}

resource "aws_sns_topic" "this" {
  name              = var.name
  display_name      = "Data lake alerts"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "topic" {
  # Principals of this account (the state machine's role) publish when their IAM policy allows it.
  statement {
    sid       = "AccountPrincipals"
    actions   = ["sns:Publish", "sns:GetTopicAttributes", "sns:Subscribe"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch alarms and EventBridge rules of this account only (confused-deputy guard).
  statement {
    sid       = "AlarmsAndEvents"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # Every action a topic policy accepts (Amazon SNS, "API permissions: Actions and resources
  # reference"), not only Publish: subscribing, reading and changing the topic over plain HTTP are
  # refused too. Not "sns:*": the SNS documentation's own example names SNS:Publish, and a topic
  # policy whose Deny names sns:* is reported to fail to deploy (cdklabs/cdk-nag#676).
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    actions = [
      "sns:AddPermission", "sns:DeleteTopic", "sns:GetDataProtectionPolicy", "sns:GetTopicAttributes",
      "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource", "sns:Publish", "sns:PutDataProtectionPolicy",
      "sns:RemovePermission", "sns:SetTopicAttributes", "sns:Subscribe",
    ]
    resources = [aws_sns_topic.this.arn]

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
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}
