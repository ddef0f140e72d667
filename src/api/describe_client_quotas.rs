//! DescribeClientQuotas (v0-v1): strom enforces no client quotas yet, so
//! every filter matches nothing (`kafka-configs.sh --describe
//! --entity-type users` asks this beside the SCRAM credentials).

use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

/// No quota is configured: an empty answer.
pub fn handle(_request: &DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default().with_entries(Some(Vec::new()))
}
