# Remote state in S3, locked in DynamoDB. This is a partial configuration: the rest is given at
# init time. The CodeBuild project of the CloudFormation seed stack (cfn/) passes the bucket, key,
# region, lock table and KMS key with -backend-config and runs with its own service role. The lock
# table is the seed stack's own, <ProjectName>-<Environment>-tfstate-lock (output LockTableName),
# so each environment's stack has one: it is not named here, and an init without dynamodb_table
# would not lock the state. From a laptop, give the same values (outputs of the seed stack:
# StateBucketName, LockTableName, KmsKeyArn; the key as the build forms it,
# <ProjectName>/<environment>/<directory>.tfstate), so that the laptop and the build share one
# state and one lock, and optionally a role to assume:
#
#   cat > backend.hcl <<HCL
#   bucket         = "<StateBucketName>"
#   key            = "<ProjectName of the seed>/<environment>/terraform.tfstate"
#   region         = "<region of the seed stack>"
#   dynamodb_table = "<LockTableName>"
#   kms_key_id     = "<KmsKeyArn>"
#   assume_role    = { role_arn = "arn:aws:iam::<account>:role/<terraform role>" }
#   HCL
#   terraform init -backend-config=backend.hcl
#
# kms_key_id is required: with encrypt = true alone the backend uploads with SSE-S3 (AES256), and
# the state bucket's policy (DenyUploadsEncryptedWithAnythingButKms) refuses every such upload.
#
# Terraform >= 1.10 can lock with a lock object in the state bucket instead (use_lockfile =
# true); the DynamoDB table stays because the seed stack creates it and older CLIs need it.
terraform {
  backend "s3" {
    encrypt = true
  }
}
