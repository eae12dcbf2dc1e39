output "s3_endpoint_id" {
  description = "ID of the S3 gateway endpoint (null when create_gateway_endpoints is false)."
  value       = one(aws_vpc_endpoint.s3[*].id)
}

output "dynamodb_endpoint_id" {
  description = "ID of the DynamoDB gateway endpoint (null when create_gateway_endpoints is false)."
  value       = one(aws_vpc_endpoint.dynamodb[*].id)
}

output "interface_endpoint_ids" {
  description = "ID of each interface endpoint, by service."
  value       = { for s, e in aws_vpc_endpoint.interface : s => e.id }
}

output "security_group_id" {
  description = "Security group of the interface endpoints."
  value       = aws_security_group.endpoints.id
}
