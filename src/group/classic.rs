//! [`ClassicGroup`]: one consumer group under Kafka's classic rebalance
//! protocol (Kafka's `ClassicGroup` plus the handler logic of its
//! `GroupMetadataManager`).
//!
//! States: Empty → PreparingRebalance → CompletingRebalance → Stable, and
//! Dead once deleted. A rebalance collects JoinGroups until every member
//! has rejoined (or the rebalance timeout passes), bumps the generation,
//! picks a protocol all members support and answers every join (the leader
//! gets the member list); the leader's SyncGroup then hands each member its
//! assignment. Waiting requests hold a oneshot receiver; the group answers
//! through the sender. Time is passed in (`now`), never read here, so the
//! state machine is tested without sleeping.
//!
//! Not thread-safe: the coordinator keeps each group behind its own mutex.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

use super::records::{GroupMetadata, MemberMetadata};

/// A group's state, named as Kafka names it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (may still have committed offsets).
    Empty,
    /// Collecting JoinGroups for a new generation.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// Settings every group obeys.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimeouts {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session: Duration,
}

/// A JoinGroup as the group sees it.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// Empty for a first join.
    pub member_id: String,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// The client's id and address, for DescribeGroups.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// How long without a heartbeat before the member is removed.
    pub session_timeout: Duration,
    /// How long a rebalance may wait for this member.
    pub rebalance_timeout: Duration,
    /// e.g. "consumer".
    pub protocol_type: String,
    /// (protocol name, metadata), in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: the client understands `skip_assignment`.
    pub supports_skip_assignment: bool,
}

/// One member in a join answer's member list.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinOutcome {
    /// The error, if refused.
    pub error: Option<ResponseError>,
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id (new for a first join).
    pub member_id: String,
    /// All members, for the leader only.
    pub members: Vec<JoinedMember>,
    /// The static leader rejoined a stable group: no new assignment needed.
    pub skip_assignment: bool,
}

impl JoinOutcome {
    fn refused(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_owned(),
            ..Self::default()
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncOutcome {
    /// The error, if refused.
    pub error: Option<ResponseError>,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncOutcome {
    fn refused(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// An answer now, or a receiver the group answers through later.
#[derive(Debug)]
pub enum Reply<T> {
    /// Answered at once.
    Now(T),
    /// Answered when the rebalance step completes.
    Later(oneshot::Receiver<T>),
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its host.
    pub client_host: String,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Its current assignment.
    pub assignment: Bytes,
}

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    last_heartbeat: Instant,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// One classic consumer group.
#[derive(Debug)]
pub struct ClassicGroup {
    /// The group id.
    pub id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order; the first member leads when the leader is gone.
    members: Vec<Member>,
    /// group.instance.id → member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending_members: HashMap<String, Instant>,
    initial_delay_until: Option<Instant>,
    join_deadline: Option<Instant>,
    sync_deadline: Option<Instant>,
    /// The group's metadata changed in a way Kafka stores (a rebalance
    /// completed, the group became empty, a static member was replaced):
    /// the coordinator writes a record before it lets go of the group.
    store_pending: bool,
    /// The leader's assignment is in, but the members' SyncGroup answers
    /// wait until the group's record is stored ([`ClassicGroup::stored`]).
    syncs_held: bool,
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            initial_delay_until: None,
            join_deadline: None,
            sync_deadline: None,
            store_pending: false,
            syncs_held: false,
        }
    }

    /// A group as its last stored record left it: a stable group keeps its
    /// generation, leader, members and assignments, and every member's
    /// session restarts at `now` (as after a Kafka coordinator failover).
    pub fn restore(id: &str, stored: GroupMetadata, now: Instant) -> Self {
        let mut group = Self::new(id);
        group.generation = stored.generation;
        group.protocol_type = Some(stored.protocol_type).filter(|t| !t.is_empty());
        let protocol = stored.protocol.clone().unwrap_or_default();
        for m in stored.members {
            if let Some(instance) = &m.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            let millis = |ms: i32| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            group.members.push(Member {
                id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout: millis(m.session_timeout_ms),
                rebalance_timeout: millis(m.rebalance_timeout_ms.max(m.session_timeout_ms)),
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                last_heartbeat: now,
            });
        }
        if group.members.is_empty() {
            group.state = GroupState::Empty;
        } else {
            group.state = GroupState::Stable;
            group.protocol = stored.protocol;
            group.leader = stored.leader;
        }
        group
    }

    /// The group's record as Kafka stores it, with the state change time
    /// `now_ms`.
    pub fn metadata(&self, now_ms: i64) -> GroupMetadata {
        let protocol = self.protocol.clone().unwrap_or_default();
        let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: now_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: millis(m.rebalance_timeout),
                    session_timeout_ms: millis(m.session_timeout),
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// The record to store, if the group changed since the last one was
    /// taken; the caller appends it and then calls [`ClassicGroup::stored`].
    pub fn take_store(&mut self, now_ms: i64) -> Option<GroupMetadata> {
        std::mem::take(&mut self.store_pending).then(|| self.metadata(now_ms))
    }

    /// The record from [`ClassicGroup::take_store`] was stored (`None`) or
    /// failed with `error`: SyncGroup answers held for it go out now, with
    /// the assignments, or with the error (and the members rejoin).
    pub fn stored(&mut self, error: Option<ResponseError>, timeouts: &GroupTimeouts, now: Instant) {
        if !std::mem::take(&mut self.syncs_held) {
            return;
        }
        match error {
            None => {
                for i in 0..self.members.len() {
                    let outcome = self.sync_outcome(i);
                    if let Some(tx) = self.members[i].awaiting_sync.take() {
                        let _ = tx.send(outcome);
                    }
                }
            }
            Some(error) => {
                for member in &mut self.members {
                    if let Some(tx) = member.awaiting_sync.take() {
                        let _ = tx.send(SyncOutcome::refused(error));
                    }
                }
                self.prepare_rebalance(timeouts, now);
            }
        }
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The protocol type, once a member joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// Whether the group has no members (pending ones included).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Marks the group deleted; waiting requests are answered with an error.
    pub fn mark_dead(&mut self) {
        self.state = GroupState::Dead;
        // A dead group's tombstone is its last record.
        self.store_pending = false;
        self.answer_waiting(ResponseError::CoordinatorNotAvailable);
        self.members.clear();
    }

    /// Answers every waiting JoinGroup and SyncGroup with `error` (the
    /// group is going away, or this node is shutting down).
    pub fn answer_waiting(&mut self, error: ResponseError) {
        for member in &mut self.members {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinOutcome::refused(error, &member.id));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncOutcome::refused(error));
            }
        }
    }

    fn member_index(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// The protocols every current member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect()
    }

    fn accepts_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidate_protocols()
                .iter()
                .any(|c| protocols.iter().any(|(name, _)| name == c))
    }

    /// Checks a request's static identity against the group's records.
    fn check_instance(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(known) if known != member_id => Err(ResponseError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    /// Handles a JoinGroup.
    pub fn join(
        &mut self,
        p: JoinParams,
        timeouts: &GroupTimeouts,
        now: Instant,
    ) -> Reply<JoinOutcome> {
        if self.state == GroupState::Dead {
            return Reply::Now(JoinOutcome::refused(
                ResponseError::CoordinatorNotAvailable,
                &p.member_id,
            ));
        }
        if p.session_timeout < timeouts.min_session || p.session_timeout > timeouts.max_session {
            return Reply::Now(JoinOutcome::refused(
                ResponseError::InvalidSessionTimeout,
                &p.member_id,
            ));
        }
        if !self.accepts_protocols(&p.protocol_type, &p.protocols) {
            return Reply::Now(JoinOutcome::refused(
                ResponseError::InconsistentGroupProtocol,
                &p.member_id,
            ));
        }
        if p.member_id.is_empty() {
            if let Some(instance) = p.instance_id.clone() {
                if let Some(old_id) = self.static_members.get(&instance).cloned() {
                    return self.rejoin_static(&old_id, p, timeouts, now);
                }
                let id = new_member_id(&instance);
                return self.add_member(id, p, timeouts, now);
            }
            let id = new_member_id(&p.client_id);
            if p.require_known_member_id {
                self.pending_members
                    .insert(id.clone(), now + p.session_timeout);
                return Reply::Now(JoinOutcome::refused(ResponseError::MemberIdRequired, &id));
            }
            return self.add_member(id, p, timeouts, now);
        }
        if self.pending_members.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, timeouts, now);
        }
        if let Err(e) = self.check_instance(&p.member_id, p.instance_id.as_deref()) {
            return Reply::Now(JoinOutcome::refused(e, &p.member_id));
        }
        let Some(index) = self.member_index(&p.member_id) else {
            return Reply::Now(JoinOutcome::refused(
                ResponseError::UnknownMemberId,
                &p.member_id,
            ));
        };
        let unchanged = self.members[index].protocols == p.protocols;
        let is_leader = self.leader.as_deref() == Some(p.member_id.as_str());
        match self.state {
            GroupState::CompletingRebalance if unchanged => {
                Reply::Now(self.join_outcome(&p.member_id))
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.members[index].last_heartbeat = now;
                Reply::Now(self.join_outcome(&p.member_id))
            }
            _ => {
                let rx = self.update_member(index, p, now);
                if self.state != GroupState::PreparingRebalance {
                    self.prepare_rebalance(timeouts, now);
                }
                self.try_complete_join(now);
                Reply::Later(rx)
            }
        }
    }

    /// Adds a new member and starts (or joins) a rebalance.
    fn add_member(
        &mut self,
        id: String,
        p: JoinParams,
        timeouts: &GroupTimeouts,
        now: Instant,
    ) -> Reply<JoinOutcome> {
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        self.members.push(Member {
            id,
            instance_id: p.instance_id.clone(),
            client_id: p.client_id.clone(),
            client_host: p.client_host.clone(),
            session_timeout: p.session_timeout,
            rebalance_timeout: p.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            last_heartbeat: now,
        });
        let index = self.members.len() - 1;
        let rx = self.update_member(index, p, now);
        if self.state == GroupState::PreparingRebalance {
            // A newcomer during the initial delay extends it (up to the deadline).
            if let (Some(_), Some(deadline)) = (self.initial_delay_until, self.join_deadline) {
                self.initial_delay_until = Some((now + timeouts.initial_delay).min(deadline));
            }
        } else {
            self.prepare_rebalance(timeouts, now);
        }
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// Records a member's join and returns the receiver for its answer.
    fn update_member(
        &mut self,
        index: usize,
        p: JoinParams,
        now: Instant,
    ) -> oneshot::Receiver<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let member = &mut self.members[index];
        if let Some(old) = member.awaiting_join.replace(tx) {
            // A retried JoinGroup replaces the earlier one.
            let _ = old.send(JoinOutcome::refused(
                ResponseError::RebalanceInProgress,
                &member.id,
            ));
        }
        member.protocols = p.protocols;
        member.session_timeout = p.session_timeout;
        member.rebalance_timeout = p.rebalance_timeout;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.last_heartbeat = now;
        rx
    }

    /// A static member rejoined with a new member id (a restart, KIP-345):
    /// it takes the old member's place; a stable group with unchanged
    /// protocols keeps its assignment without a rebalance.
    fn rejoin_static(
        &mut self,
        old_id: &str,
        p: JoinParams,
        timeouts: &GroupTimeouts,
        now: Instant,
    ) -> Reply<JoinOutcome> {
        let Some(index) = self.member_index(old_id) else {
            return Reply::Now(JoinOutcome::refused(ResponseError::UnknownMemberId, old_id));
        };
        let instance = p.instance_id.clone().unwrap_or_default();
        let new_id = new_member_id(&instance);
        let member = &mut self.members[index];
        if let Some(old) = member.awaiting_join.take() {
            let _ = old.send(JoinOutcome::refused(
                ResponseError::FencedInstanceId,
                old_id,
            ));
        }
        if let Some(old) = member.awaiting_sync.take() {
            let _ = old.send(SyncOutcome::refused(ResponseError::FencedInstanceId));
        }
        member.id = new_id.clone();
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        let unchanged = self.members[index].protocols == p.protocols;
        if self.state == GroupState::Stable && unchanged {
            let member = &mut self.members[index];
            member.session_timeout = p.session_timeout;
            member.rebalance_timeout = p.rebalance_timeout;
            member.client_id = p.client_id;
            member.client_host = p.client_host;
            member.last_heartbeat = now;
            // The member id changed: the stored record must name the new one.
            self.store_pending = true;
            let mut outcome = self.join_outcome(&new_id);
            if self.leader.as_deref() == Some(new_id.as_str()) {
                if p.supports_skip_assignment {
                    outcome.skip_assignment = true;
                } else {
                    // An older client would reassign; as Kafka does, make it
                    // a follower by naming the old leader id and no members.
                    outcome.leader = old_id.to_owned();
                    outcome.members.clear();
                }
            }
            return Reply::Now(outcome);
        }
        let rx = self.update_member(index, p, now);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(timeouts, now);
        }
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// The current generation's join answer for one member.
    fn join_outcome(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .iter()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
            skip_assignment: false,
        }
    }

    /// Enters PreparingRebalance: pending syncs are told to rejoin and the
    /// join deadline is set (after an initial delay for an empty group).
    fn prepare_rebalance(&mut self, timeouts: &GroupTimeouts, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in &mut self.members {
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncOutcome::refused(ResponseError::RebalanceInProgress));
                }
            }
        }
        for member in &mut self.members {
            member.assignment = Bytes::new();
        }
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.initial_delay_until =
            (self.state == GroupState::Empty).then(|| now + timeouts.initial_delay.min(timeout));
        self.join_deadline = Some(now + timeout);
        self.sync_deadline = None;
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase if every member has rejoined and the
    /// initial delay is over, or if the join deadline has passed.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if self.initial_delay_until.is_some_and(|until| now < until) {
            return;
        }
        let all_joined = self.members.iter().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        let expired = self.join_deadline.is_some_and(|d| now >= d);
        if all_joined || expired {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Members that did not rejoin in time are out.
        let missing: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &missing {
            self.drop_member(id);
        }
        self.pending_members.clear();
        self.generation += 1;
        self.initial_delay_until = None;
        self.join_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.store_pending = true;
            return;
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| self.member_index(l).is_none())
        {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.sync_deadline = Some(now + timeout);
        let answers: Vec<(usize, JoinOutcome)> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (i, self.join_outcome(&m.id)))
            .collect();
        for (i, outcome) in answers {
            let member = &mut self.members[i];
            member.last_heartbeat = now;
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(outcome);
            }
        }
    }

    /// The protocol with the most first-choice votes among those all members support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for member in &self.members {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(n))
            {
                if let Some(entry) = votes.iter_mut().find(|(c, _)| c == name) {
                    entry.1 += 1;
                }
            }
        }
        // max_by_key returns the last maximum; iterate reversed to prefer the first.
        votes
            .into_iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map(|(name, _)| name)
    }

    /// Removes a member without starting a rebalance.
    fn drop_member(&mut self, id: &str) {
        if let Some(index) = self.member_index(id) {
            let member = self.members.remove(index);
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(tx) = member.awaiting_join {
                let _ = tx.send(JoinOutcome::refused(ResponseError::UnknownMemberId, id));
            }
            if let Some(tx) = member.awaiting_sync {
                let _ = tx.send(SyncOutcome::refused(ResponseError::UnknownMemberId));
            }
        }
    }

    /// Removes a member and rebalances the rest.
    fn remove_member(&mut self, id: &str, timeouts: &GroupTimeouts, now: Instant) {
        self.drop_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(timeouts, now);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Validates a member's identity and generation (SyncGroup, Heartbeat, OffsetCommit).
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<usize, ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.check_instance(member_id, instance_id)?;
        let index = self
            .member_index(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(index)
    }

    /// Handles a SyncGroup; the leader's assignments complete everyone's.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncOutcome> {
        let index = match self.check_member(member_id, instance_id, generation) {
            Ok(index) => index,
            Err(e) => return Reply::Now(SyncOutcome::refused(e)),
        };
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return Reply::Now(SyncOutcome::refused(
                ResponseError::InconsistentGroupProtocol,
            ));
        }
        self.members[index].last_heartbeat = now;
        match self.state {
            GroupState::PreparingRebalance => {
                Reply::Now(SyncOutcome::refused(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => Reply::Now(self.sync_outcome(index)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.members[index].awaiting_sync = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in &mut self.members {
                        member.assignment = by_member.remove(&member.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.sync_deadline = None;
                    // As Kafka: the answers go out once the group's new
                    // metadata is stored.
                    self.store_pending = true;
                    self.syncs_held = true;
                }
                Reply::Later(rx)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(SyncOutcome::refused(ResponseError::UnknownMemberId))
            }
        }
    }

    fn sync_outcome(&self, index: usize) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self.members[index].assignment.clone(),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Empty {
            return Some(ResponseError::UnknownMemberId);
        }
        let index = match self.check_member(member_id, instance_id, generation) {
            Ok(index) => index,
            Err(e) => return Some(e),
        };
        self.members[index].last_heartbeat = now;
        (self.state == GroupState::PreparingRebalance).then_some(ResponseError::RebalanceInProgress)
    }

    /// Handles one member of a LeaveGroup (by member id, or by instance id
    /// when `member_id` is empty).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        timeouts: &GroupTimeouts,
        now: Instant,
    ) -> Option<ResponseError> {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Some(ResponseError::UnknownMemberId),
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return Some(ResponseError::FencedInstanceId)
                }
                Some(known) => known.clone(),
            },
            None => member_id.to_owned(),
        };
        if self.pending_members.remove(&id).is_some() {
            self.try_complete_join(now);
            return None;
        }
        if self.member_index(&id).is_none() {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id, timeouts, now);
        None
    }

    /// Checks an OffsetCommit's (or, `transactional`, a TxnOffsetCommit's)
    /// member and generation, as Kafka's `ClassicGroup.validateOffsetCommit`:
    /// generation -1 commits while the group is empty (manual assignment,
    /// admin tools); a transactional commit without member id and
    /// generation (an older producer) is always accepted.
    ///
    /// # Errors
    /// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
    /// REBALANCE_IN_PROGRESS (between join and sync).
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        transactional: bool,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            let index = self.check_member(member_id, instance_id, generation)?;
            self.members[index].last_heartbeat = now;
        } else if !transactional {
            // No member id nor generation: only while the group is empty.
            // Transactional commits of older producers carry neither.
            return Err(ResponseError::UnknownMemberId);
        }
        // A transactional commit is not refused mid-rebalance (the Java
        // producer treats that error as fatal).
        if !transactional && self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Runs the group's timers: pending member ids and sessions expire,
    /// joins and syncs that waited too long complete or are abandoned.
    /// Returns the ids of members removed for missing heartbeats.
    pub fn tick(&mut self, timeouts: &GroupTimeouts, now: Instant) -> Vec<String> {
        let pending_before = self.pending_members.len();
        self.pending_members.retain(|_, expiry| *expiry > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .filter(|m| now >= m.last_heartbeat + m.session_timeout)
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id, timeouts, now);
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now >= d)
        {
            // The leader never sent its assignment: drop whoever did not sync.
            let laggards: Vec<String> = self
                .members
                .iter()
                .filter(|m| m.awaiting_sync.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in &laggards {
                self.drop_member(id);
            }
            self.prepare_rebalance(timeouts, now);
        }
        if pending_before != self.pending_members.len()
            || self.state == GroupState::PreparingRebalance
        {
            self.try_complete_join(now);
        }
        expired
    }

    /// The group's protocol, and its members as DescribeGroups reports them.
    pub fn describe(&self) -> (Option<String>, Vec<MemberDescription>) {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = self
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect();
        (self.protocol.clone(), members)
    }

    /// Topics the members subscribe to (consumer protocol metadata), for OffsetDelete.
    pub fn subscribed_topics(&self) -> Vec<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut topics = Vec::new();
        for member in &self.members {
            let mut metadata = member.metadata_for(&protocol);
            if metadata.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([metadata[0], metadata[1]]);
            bytes::Buf::advance(&mut metadata, 2);
            if let Ok(sub) =
                ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3))
            {
                topics.extend(sub.topics.iter().map(|t| t.to_string()));
            }
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: GroupTimeouts = GroupTimeouts {
        initial_delay: Duration::ZERO,
        min_session: Duration::from_millis(10),
        max_session: Duration::from_secs(300),
    };

    fn params(member_id: &str, instance: Option<&str>) -> JoinParams {
        JoinParams {
            member_id: member_id.into(),
            instance_id: instance.map(str::to_owned),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
            supports_skip_assignment: false,
        }
    }

    /// A SyncGroup whose record (if it completes the rebalance) is stored at once.
    fn sync_stored(
        group: &mut ClassicGroup,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncOutcome> {
        let reply = group.sync(member, instance, generation, protocol, assignments, now);
        if group.take_store(0).is_some() {
            group.stored(None, &TIMEOUTS, now);
        }
        reply
    }

    fn now_answer<T>(reply: Reply<T>) -> T {
        match reply {
            Reply::Now(v) => v,
            Reply::Later(mut rx) => rx.try_recv().expect("answered already"),
        }
    }

    /// Two-step join (KIP-394) of a new dynamic member; returns its id.
    fn join_new(group: &mut ClassicGroup, now: Instant) -> (String, Reply<JoinOutcome>) {
        let first = now_answer(group.join(params("", None), &TIMEOUTS, now));
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        let id = first.member_id.clone();
        (id.clone(), group.join(params(&id, None), &TIMEOUTS, now))
    }

    #[test]
    fn two_members_rebalance_and_sync() {
        let now = Instant::now();
        let mut group = ClassicGroup::new("g");
        let (a, reply) = join_new(&mut group, now);
        let joined = now_answer(reply);
        assert_eq!((joined.generation, joined.leader.as_str()), (1, a.as_str()));
        assert_eq!(group.state(), GroupState::CompletingRebalance);
        let synced = now_answer(sync_stored(
            &mut group,
            &a,
            None,
            1,
            (None, None),
            vec![(a.clone(), Bytes::from_static(b"A"))],
            now,
        ));
        assert_eq!(synced.assignment, Bytes::from_static(b"A"));
        assert_eq!(group.state(), GroupState::Stable);

        // A second member triggers a rebalance; the first must rejoin.
        let (b, b_reply) = join_new(&mut group, now);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(
            group.heartbeat(&a, None, 1, now),
            Some(ResponseError::RebalanceInProgress)
        );
        let Reply::Later(mut b_rx) = b_reply else {
            panic!("b must wait")
        };
        assert!(b_rx.try_recv().is_err());
        let a_join = now_answer(group.join(params(&a, None), &TIMEOUTS, now));
        let b_join = b_rx.try_recv().expect("completed");
        assert_eq!(a_join.generation, 2);
        assert_eq!(a_join.members.len(), 2, "the leader sees everyone");
        assert!(b_join.members.is_empty());
        let Reply::Later(mut b_sync) = group.sync(&b, None, 2, (None, None), vec![], now) else {
            panic!()
        };
        assert!(b_sync.try_recv().is_err(), "followers wait for the leader");
        let assignments = vec![
            (a.clone(), Bytes::from_static(b"A2")),
            (b.clone(), Bytes::from_static(b"B2")),
        ];
        now_answer(sync_stored(
            &mut group,
            &a,
            None,
            2,
            (Some("consumer"), Some("range")),
            assignments,
            now,
        ));
        assert_eq!(
            b_sync.try_recv().unwrap().assignment,
            Bytes::from_static(b"B2")
        );
        assert_eq!(
            group
                .sync(&b, None, 1, (None, None), vec![], now)
                .now()
                .error,
            Some(ResponseError::IllegalGeneration)
        );
    }

    #[test]
    fn session_expiry_and_leave_rebalance() {
        let now = Instant::now();
        let mut group = ClassicGroup::new("g");
        let (a, reply) = join_new(&mut group, now);
        now_answer(reply);
        now_answer(sync_stored(
            &mut group,
            &a,
            None,
            1,
            (None, None),
            vec![],
            now,
        ));
        assert!(group
            .tick(&TIMEOUTS, now + Duration::from_secs(5))
            .is_empty());
        let expired = group.tick(&TIMEOUTS, now + Duration::from_secs(11));
        assert_eq!(expired, vec![a.clone()]);
        assert_eq!(group.state(), GroupState::Empty);
        assert_eq!(
            group.heartbeat(&a, None, 1, now),
            Some(ResponseError::UnknownMemberId)
        );

        let (b, reply) = join_new(&mut group, now);
        now_answer(reply);
        assert_eq!(group.leave(&b, None, &TIMEOUTS, now), None);
        assert_eq!(group.state(), GroupState::Empty);
        assert_eq!(
            group.leave(&b, None, &TIMEOUTS, now),
            Some(ResponseError::UnknownMemberId)
        );
    }

    #[test]
    fn static_member_restart_keeps_assignment() {
        let now = Instant::now();
        let mut group = ClassicGroup::new("g");
        let joined = now_answer(group.join(params("", Some("i1")), &TIMEOUTS, now));
        let old_id = joined.member_id.clone();
        now_answer(sync_stored(
            &mut group,
            &old_id,
            Some("i1"),
            1,
            (None, None),
            vec![(old_id.clone(), Bytes::from_static(b"P"))],
            now,
        ));
        // Restart: a new JoinGroup with no member id and the same instance id.
        let rejoined = now_answer(group.join(params("", Some("i1")), &TIMEOUTS, now));
        assert_ne!(rejoined.member_id, old_id);
        assert_eq!(rejoined.generation, 1, "no rebalance");
        assert_eq!(group.state(), GroupState::Stable);
        let synced = now_answer(sync_stored(
            &mut group,
            &rejoined.member_id,
            Some("i1"),
            1,
            (None, None),
            vec![],
            now,
        ));
        assert_eq!(synced.assignment, Bytes::from_static(b"P"));
        // The old incarnation is fenced.
        assert_eq!(
            group.heartbeat(&old_id, Some("i1"), 1, now),
            Some(ResponseError::FencedInstanceId)
        );
    }

    #[test]
    fn protocol_checks() {
        let now = Instant::now();
        let mut group = ClassicGroup::new("g");
        let (_, reply) = join_new(&mut group, now);
        now_answer(reply);
        let mut other = params("", None);
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        assert_eq!(
            now_answer(group.join(other, &TIMEOUTS, now)).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        let mut short = params("", None);
        short.session_timeout = Duration::from_millis(1);
        assert_eq!(
            now_answer(group.join(short, &TIMEOUTS, now)).error,
            Some(ResponseError::InvalidSessionTimeout)
        );
    }

    impl<T> Reply<T> {
        fn now(self) -> T {
            now_answer(self)
        }
    }
}
