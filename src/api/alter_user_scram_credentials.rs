//! AlterUserScramCredentials (v0): sets and deletes users' SCRAM
//! credentials (`kafka-configs.sh --entity-type users --alter
//! --add-config 'SCRAM-SHA-256=[password=...]'`). The client salts the
//! password; the broker keeps the stored and server keys derived from it.
//! One result per user: every change of a user applies, or none.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::cluster::credentials::CredentialChange;
use crate::error::ApiError;
use crate::security::scram::{ScramCredential, ScramMechanism};

/// Checks every change, then applies the valid users' changes at once.
pub fn handle(
    broker: &Broker,
    request: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let existing = broker.scram_credentials();
    // Per user, in request order: its changes, or why it is refused.
    let mut users: BTreeMap<String, Result<Vec<CredentialChange>, ApiError>> = BTreeMap::new();
    let mut order = Vec::new();
    // Kafka keys the changes by user: a user named twice (two mechanisms,
    // or a deletion and an upsertion) is refused whole.
    let mut touched: BTreeMap<String, usize> = BTreeMap::new();
    let deletions = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None));
    let upsertions = request
        .upsertions
        .iter()
        .map(|u| (u.name.to_string(), u.mechanism, Some(u)));
    for (user, code, upsertion) in deletions.chain(upsertions) {
        *touched.entry(user.clone()).or_default() += 1;
        if !users.contains_key(&user) {
            order.push(user.clone());
        }
        let entry = users.entry(user.clone()).or_insert_with(|| Ok(Vec::new()));
        let Ok(changes) = entry else { continue };
        let change = check(&user, code, upsertion, &existing);
        match change {
            Ok(change) => changes.push(change),
            Err(e) => *entry = Err(e),
        }
    }
    for (user, count) in &touched {
        if *count > 1 {
            users.insert(
                user.clone(),
                Err(ApiError::new(
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request",
                )),
            );
        }
    }
    let valid: Vec<CredentialChange> = users
        .values()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    let applied = if valid.is_empty() {
        Ok(())
    } else {
        broker.alter_scram_credentials(valid)
    };
    let results = order
        .into_iter()
        .map(|user| {
            let outcome = match users.remove(&user) {
                Some(Ok(_)) => applied.clone(),
                Some(Err(e)) => Err(e),
                None => Ok(()),
            };
            let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(user));
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code.code())
                    .with_error_message(e.message.map(str_bytes)),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// One deletion (`upsertion` None) or upsertion, checked as Kafka does.
fn check(
    user: &str,
    code: i8,
    upsertion: Option<
        &kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion,
    >,
    existing: &BTreeMap<String, crate::cluster::credentials::UserCredentials>,
) -> Result<CredentialChange, ApiError> {
    if user.is_empty() {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    let mechanism = ScramMechanism::from_type(code).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        )
    })?;
    let Some(upsertion) = upsertion else {
        if !existing
            .get(user)
            .is_some_and(|c| c.contains_key(&mechanism))
        {
            return Err(ApiError::new(
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            ));
        }
        return Ok(CredentialChange::Delete {
            user: user.to_owned(),
            mechanism,
        });
    };
    if upsertion.iterations < ScramMechanism::MIN_ITERATIONS {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "Too few iterations",
        ));
    }
    if upsertion.iterations > ScramMechanism::MAX_ITERATIONS {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "Too many iterations",
        ));
    }
    if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "Salt and salted password must not be empty",
        ));
    }
    Ok(CredentialChange::Upsert {
        user: user.to_owned(),
        mechanism,
        credential: ScramCredential::from_salted_password(
            mechanism,
            &upsertion.salt,
            &upsertion.salted_password,
            upsertion.iterations,
        ),
    })
}
