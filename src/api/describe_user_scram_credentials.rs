//! DescribeUserScramCredentials (v0): each user's SCRAM mechanisms and
//! iterations (never the credentials); all users when none are named.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::broker::Broker;

/// Answers from the stored credentials.
pub fn handle(
    broker: &Broker,
    request: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let all = broker.scram_credentials();
    let named: Vec<String> = request
        .users
        .iter()
        .flatten()
        .map(|u| u.name.to_string())
        .collect();
    let users: Vec<String> = if named.is_empty() {
        all.keys().cloned().collect()
    } else {
        named.clone()
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for user in &named {
        *seen.entry(user.as_str()).or_default() += 1;
    }
    let mut results = Vec::new();
    let mut answered = std::collections::BTreeSet::new();
    for user in &users {
        if !answered.insert(user.clone()) {
            continue;
        }
        let result =
            DescribeUserScramCredentialsResult::default().with_user(str_bytes(user.clone()));
        let result = if seen.get(user.as_str()).is_some_and(|n| *n > 1) {
            result
                .with_error_code(ResponseError::DuplicateResource.code())
                .with_error_message(Some(str_bytes(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                ))))
        } else {
            match all.get(user) {
                Some(credentials) => result.with_credential_infos(
                    credentials
                        .iter()
                        .map(|(mechanism, credential)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.type_code())
                                .with_iterations(credential.iterations)
                        })
                        .collect(),
                ),
                None => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(str_bytes(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
            }
        };
        results.push(result);
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
