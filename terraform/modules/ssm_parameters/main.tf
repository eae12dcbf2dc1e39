# The environment's settings in Parameter Store, for operators, scripts and other stacks
# (bucket URIs, table names, job and workgroup names). All are SecureString with the lake key:
# none is a password, but encrypting them costs nothing and keeps one rule for every parameter.

resource "aws_ssm_parameter" "this" {
  for_each = var.parameters

  name        = "${var.path_prefix}/${each.key}"
  description = "Data lake setting ${each.key} (managed by Terraform)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = each.value
  tier        = "Standard"
  tags        = var.tags
}
