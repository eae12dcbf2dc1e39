# Settings of the dev environment. The CodeBuild project of the seed stack (cfn/seed.yaml) passes
# this file to Terraform with -var-file when its Environment is dev; the environment name itself
# comes from the seed. Replace the example values with the account's before the first build.

vpc_name         = "corp-vpc-dev"   # Name tag of the VPC connected to the on-premise site
on_premise_cidrs = ["10.20.0.0/16"] # where the on-premise database is reached
alarm_email      = ""               # no e-mail subscription

# A development lake: small runs that may wait for spare capacity.
glue_execution_class   = "FLEX"
glue_number_of_workers = 2
