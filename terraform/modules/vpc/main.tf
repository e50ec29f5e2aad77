data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for s in var.availability_zone_suffixes : "${data.aws_region.current.name}${s}"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(var.availability_zone_suffixes)
      error_message = "Not every zone in availability_zone_suffixes exists and is available in this region."
    }
  }
}

data "aws_vpc_endpoint_service" "s3" {
  service      = "s3"
  service_type = "Gateway"
}

data "aws_vpc_endpoint_service" "dynamodb" {
  service      = "dynamodb"
  service_type = "Gateway"
}

data "aws_vpc_endpoint_service" "interface" {
  for_each = toset(var.interface_endpoint_services)

  service      = each.key
  service_type = "Interface"
}

locals {
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  az_count  = length(var.availability_zone_suffixes)
  azs       = data.aws_availability_zones.selected.names

  # /20 subnets: private ones from index 0, public ones from index 8.
  private_cidrs = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 4, i)]
  public_cidrs  = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 4, i + 8)]

  public_subnet_count = var.create_public_subnets ? local.az_count : 0
  nat_gateway_count   = var.enable_nat_gateway && var.create_public_subnets ? 1 : 0

  # The environment's resources: named after resource_name_prefix (a team's VPC has a longer name).
  resource_prefix = coalesce(var.resource_name_prefix, var.name_prefix)

  s3_bucket_patterns = var.s3_endpoint_bucket_arn_patterns != null ? var.s3_endpoint_bucket_arn_patterns : [
    "arn:${local.partition}:s3:::${local.resource_prefix}-*",
    "arn:${local.partition}:s3:::prod-${local.region}-starport-layer-bucket",
  ]
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = var.name_prefix
  }
}

# Take over the default security group and leave it without rules, so nothing can use it by
# accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-default-closed"
  }
}

# ---------------------------------------------------------------------------------------------
# Private subnets (one per AZ), each with its own route table
# ---------------------------------------------------------------------------------------------

resource "aws_subnet" "private" {
  count = local.az_count

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = local.private_cidrs[count.index]
  map_public_ip_on_launch = false

  tags = {
    Name = "${var.name_prefix}-private-${local.azs[count.index]}"
    Tier = "private"
  }
}

resource "aws_route_table" "private" {
  count = local.az_count

  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-private-${local.azs[count.index]}"
  }
}

resource "aws_route_table_association" "private" {
  count = local.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# ---------------------------------------------------------------------------------------------
# Optional public subnets, internet gateway and NAT gateway
# ---------------------------------------------------------------------------------------------

resource "aws_internet_gateway" "this" {
  count = var.create_public_subnets ? 1 : 0

  vpc_id = aws_vpc.this.id

  tags = {
    Name = var.name_prefix
  }
}

resource "aws_subnet" "public" {
  count = local.public_subnet_count

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = local.public_cidrs[count.index]
  # Nothing gets a public address unless it asks for one (a Fargate task launched with
  # assignPublicIp = ENABLED).
  map_public_ip_on_launch = false

  tags = {
    Name = "${var.name_prefix}-public-${local.azs[count.index]}"
    Tier = "public"
  }
}

resource "aws_route_table" "public" {
  count = var.create_public_subnets ? 1 : 0

  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-public"
  }
}

resource "aws_route" "public_internet" {
  count = var.create_public_subnets ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = local.public_subnet_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count = local.nat_gateway_count

  domain = "vpc"

  tags = {
    Name = "${var.name_prefix}-nat"
  }
}

resource "aws_nat_gateway" "this" {
  count = local.nat_gateway_count

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = {
    Name = var.name_prefix
  }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route" "private_nat" {
  count = local.nat_gateway_count > 0 ? local.az_count : 0

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

# ---------------------------------------------------------------------------------------------
# S3 gateway endpoint (free): S3 traffic from the subnets never needs a NAT gateway
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "s3_endpoint" {
  statement {
    sid    = "PlatformBucketsOnly"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = concat(
      local.s3_bucket_patterns,
      [for p in local.s3_bucket_patterns : "${p}/*"],
    )

    # An endpoint policy has no caller of its own: "*" here means "any principal whose own
    # policies allow the call"; it grants nothing by itself.
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = data.aws_vpc_endpoint_service.s3.service_name
  vpc_endpoint_type = "Gateway"
  policy            = data.aws_iam_policy_document.s3_endpoint.json
  route_table_ids   = concat(aws_route_table.private[*].id, aws_route_table.public[*].id)

  tags = {
    Name = "${var.name_prefix}-s3"
  }
}

# DynamoDB through a free gateway endpoint as well (the bus ledger and the event stream): code in
# these subnets reaches it without a NAT gateway. Limited to this environment's tables.
data "aws_iam_policy_document" "dynamodb_endpoint" {
  statement {
    sid    = "PlatformTablesOnly"
    effect = "Allow"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeStream",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]
    resources = [
      "arn:${local.partition}:dynamodb:${local.region}:${data.aws_caller_identity.current.account_id}:table/${local.resource_prefix}-*",
    ]

    # As for S3: "*" means any principal whose own policies allow the call.
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = aws_vpc.this.id
  service_name      = data.aws_vpc_endpoint_service.dynamodb.service_name
  vpc_endpoint_type = "Gateway"
  policy            = data.aws_iam_policy_document.dynamodb_endpoint.json
  route_table_ids   = concat(aws_route_table.private[*].id, aws_route_table.public[*].id)

  tags = {
    Name = "${var.name_prefix}-dynamodb"
  }
}

# ---------------------------------------------------------------------------------------------
# Optional interface endpoints (private subnets reach these AWS APIs without NAT)
# ---------------------------------------------------------------------------------------------

resource "aws_security_group" "endpoints" {
  count = length(var.interface_endpoint_services) > 0 ? 1 : 0

  name        = "${var.name_prefix}-endpoints"
  description = "HTTPS from inside the VPC to the interface endpoints"
  vpc_id      = aws_vpc.this.id

  ingress {
    description = "HTTPS from the VPC"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.cidr_block]
  }

  tags = {
    Name = "${var.name_prefix}-endpoints"
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = data.aws_vpc_endpoint_service.interface

  vpc_id              = aws_vpc.this.id
  service_name        = each.value.service_name
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints[0].id]

  tags = {
    Name = "${var.name_prefix}-${each.key}"
  }
}

# ---------------------------------------------------------------------------------------------
# Optional flow logs, delivered to S3 as hourly-partitioned Parquet
# ---------------------------------------------------------------------------------------------

resource "aws_flow_log" "this" {
  count = var.enable_flow_logs ? 1 : 0

  vpc_id                   = aws_vpc.this.id
  traffic_type             = var.flow_logs_traffic_type
  log_destination_type     = "s3"
  log_destination          = var.flow_logs_destination_arn
  max_aggregation_interval = 600

  destination_options {
    file_format                = "parquet"
    hive_compatible_partitions = true
    per_hour_partition         = true
  }

  tags = {
    Name = var.name_prefix
  }

  lifecycle {
    precondition {
      condition     = var.flow_logs_destination_arn != null
      error_message = "flow_logs_destination_arn is required when enable_flow_logs is true."
    }
  }
}
