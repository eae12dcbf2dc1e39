# Settings of the int (integration) environment. The CodeBuild project of the seed stack
# (cfn/seed.yaml) passes this file to Terraform with -var-file when its Environment is int; the
# environment name itself comes from the seed. Replace the example values with the account's
# before the first build.

vpc_name         = "corp-vpc-int"
on_premise_cidrs = ["10.20.0.0/16"]
alarm_email      = ""

# Production-like settings, on spare capacity.
glue_execution_class   = "FLEX"
glue_number_of_workers = 4
