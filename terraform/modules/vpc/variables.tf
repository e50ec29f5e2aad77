variable "name_prefix" {
  description = "Prefix for every resource name, for example \"eventlake-poc\"."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC. Subnets are /20s carved from it (a /16 leaves room for 16)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be a valid IPv4 CIDR block."
  }
}

variable "availability_zone_suffixes" {
  description = "Availability zones to use, as letters appended to the region name (for example [\"a\", \"b\"] gives eu-west-1a and eu-west-1b). At least two. Naming the zones keeps the subnet layout fixed when AWS adds a zone to the region."
  type        = list(string)
  default     = ["a", "b"]

  validation {
    condition     = length(var.availability_zone_suffixes) >= 2 && length(var.availability_zone_suffixes) <= 6 && alltrue([for s in var.availability_zone_suffixes : can(regex("^[a-z]$", s))])
    error_message = "availability_zone_suffixes must hold 2 to 6 single lower-case letters."
  }
}

variable "create_public_subnets" {
  description = "Create one public subnet per AZ with an internet gateway. Needed for a NAT gateway, or to run short Fargate tasks with a public IP instead of paying for interface endpoints."
  type        = bool
  default     = false
}

variable "enable_nat_gateway" {
  description = "Create one NAT gateway (in the first public subnet) as the default route of the private subnets. Off by default: about 33 USD a month plus data processing. Requires create_public_subnets."
  type        = bool
  default     = false
}

variable "interface_endpoint_services" {
  description = "AWS services to reach from the private subnets through interface endpoints, by short name (for example [\"ecr.api\", \"ecr.dkr\", \"logs\", \"glue\", \"sts\"]). Each costs about 7.3 USD a month per AZ."
  type        = list(string)
  default     = []
}

variable "enable_flow_logs" {
  description = "Deliver VPC flow logs to S3 (flow_logs_destination_arn)."
  type        = bool
  default     = false
}

variable "flow_logs_destination_arn" {
  description = "ARN of the S3 bucket (optionally with a folder: arn/folder/) that receives the flow logs. Required when enable_flow_logs is true."
  type        = string
  default     = null
}

variable "flow_logs_traffic_type" {
  description = "Which traffic the flow logs record: ACCEPT, REJECT or ALL."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_logs_traffic_type)
    error_message = "flow_logs_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "s3_endpoint_bucket_arn_patterns" {
  description = "Bucket ARN patterns the S3 gateway endpoint policy allows (objects under them too). Defaults to the buckets whose name starts with name_prefix, plus the regional ECR layer bucket that Fargate image pulls read from."
  type        = list(string)
  default     = null
}

variable "resource_name_prefix" {
  description = "Prefix of the environment's buckets and tables that the gateway endpoints' policies allow (default: name_prefix). A team's VPC is named <prefix>-<team> but reaches the environment's resources."
  type        = string
  default     = null
}
