# Settings of the prod environment. The CodeBuild project of the seed stack (cfn/seed.yaml)
# passes this file to Terraform with -var-file when its Environment is prod; the environment
# name itself comes from the seed. Replace the example values with the account's before the
# first build.

vpc_name         = "corp-vpc-prod"
on_premise_cidrs = ["10.20.0.0/16"]
alarm_email      = "data-team@example.com" # confirm the subscription after the first apply

# Runs someone may wait for: dedicated capacity, auto scaling up to 10 workers.
glue_execution_class   = "STANDARD"
glue_number_of_workers = 10
