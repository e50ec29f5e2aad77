# The proof of concept: the defaults, spelled out where they differ between environments.
environment                    = "poc"
vpc_cidr                       = "10.40.0.0/16"
team_vpc_supernet              = "10.44.0.0/14"
etl_tasks_in_private_subnets   = false
enable_guardduty               = true
manage_glue_catalog_encryption = true
