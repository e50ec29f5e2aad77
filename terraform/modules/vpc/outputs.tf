output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "Availability zones the subnets are spread over."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "Ids of the private subnets, one per AZ."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Ids of the public subnets, one per AZ (empty unless create_public_subnets)."
  value       = aws_subnet.public[*].id
}

output "private_route_table_ids" {
  description = "Ids of the private route tables, one per AZ."
  value       = aws_route_table.private[*].id
}

output "s3_gateway_endpoint_id" {
  description = "Id of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.id
}

output "s3_prefix_list_id" {
  description = "Id of the S3 managed prefix list, for security group egress rules towards the gateway endpoint."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "interface_endpoint_ids" {
  description = "Interface endpoint ids by service short name."
  value       = { for k, e in aws_vpc_endpoint.interface : k => e.id }
}

output "nat_gateway_enabled" {
  description = "Whether a NAT gateway was created."
  value       = local.nat_gateway_count > 0
}

output "dynamodb_gateway_endpoint_id" {
  description = "ID of the DynamoDB gateway endpoint (free; limited to this environment's tables)."
  value       = aws_vpc_endpoint.dynamodb.id
}
