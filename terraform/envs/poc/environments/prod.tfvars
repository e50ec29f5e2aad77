# Production: in an account of its own, so it owns the account-wide settings. Fargate tasks run
# in the private subnets (through interface endpoints, about 73 USD a month for two zones);
# analysts assume their roles with MFA.
environment                    = "prod"
vpc_cidr                       = "10.42.0.0/16"
team_vpc_supernet              = "10.52.0.0/14"
availability_zone_suffixes     = ["a", "b", "c"]
etl_tasks_in_private_subnets   = true
enable_flow_logs               = true
analyst_require_mfa            = true
enable_guardduty               = true
manage_glue_catalog_encryption = true
