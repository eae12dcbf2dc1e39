# Remote state in S3, locked in DynamoDB. This is a partial configuration: the rest is given at
# init time. The CodeBuild project of the CloudFormation seed stack (cfn/) passes the bucket, key,
# region, lock table and KMS key with -backend-config and runs with its own service role. From a
# laptop, a file can also name a role to assume, for example:
#
#   cat > backend.hcl <<HCL
#   bucket      = "<state bucket>"
#   key         = "datalake/<environment>/terraform.tfstate"
#   region      = "eu-west-1"
#   assume_role = { role_arn = "arn:aws:iam::<account>:role/<terraform role>" }
#   HCL
#   terraform init -backend-config=backend.hcl
#
# Terraform >= 1.10 can lock with a lock object in the state bucket instead (use_lockfile =
# true); the DynamoDB table stays here because the seed stack creates it and older CLIs need it.
terraform {
  backend "s3" {
    encrypt        = true
    dynamodb_table = "tf-state-lock-bootstrap"
  }
}
