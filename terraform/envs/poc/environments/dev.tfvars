# Development: cheap and disposable. Shares the account and region with another environment, so
# the account-wide settings (GuardDuty detector, Glue catalog encryption) stay with that one.
environment                    = "dev"
vpc_cidr                       = "10.41.0.0/16"
team_vpc_supernet              = "10.48.0.0/14"
etl_tasks_in_private_subnets   = false
enable_flow_logs               = false
log_retention_days             = 30
raw_expiration_days            = 30
analyst_require_mfa            = false
enable_guardduty               = false
manage_glue_catalog_encryption = false
