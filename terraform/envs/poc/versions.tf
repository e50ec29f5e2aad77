terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # State
  # -----
  # Without a backend block, state is local (terraform.tfstate next to this file). That is
  # acceptable for a single operator trying the POC, but the state file holds resource ids and
  # ARNs and must not be committed (it is not needed in git, and a lost copy means importing
  # every resource again).
  #
  # For shared use, keep state in an S3 bucket created once outside this configuration (a
  # configuration cannot safely store its state in a bucket it manages itself), with versioning,
  # SSE-KMS and a TLS-only policy, and use S3 native locking (Terraform >= 1.10). Uncomment
  #
  # backend "s3" {}
  #
  # and give each environment its own state key (environments/<env>.s3.tfbackend):
  # `terraform init -reconfigure -backend-config=environments/<env>.s3.tfbackend`, then
  # `terraform init -migrate-state` for state that was local. With local state, a workspace per
  # environment (`terraform workspace select -or-create <env>`) keeps them apart instead. Commit the .terraform.lock.hcl that `terraform
  # init` writes, so every run uses the same provider build.
}
