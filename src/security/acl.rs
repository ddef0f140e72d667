//! ACLs with the semantics of Kafka's StandardAuthorizer: bindings
//! (resource pattern, principal, host, operation, allow or deny), filters
//! (DescribeAcls, DeleteAcls) and the one decision every handler asks for,
//! [`Authorizer::authorize`].
//!
//! Decision order, as Kafka's: a super user is allowed; a matching DENY
//! (same operation or ALL) denies; a matching ALLOW (same operation, ALL,
//! or one that implies it: READ, WRITE, DELETE, ALTER imply DESCRIBE;
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows; a resource no ACL
//! matches at all is allowed only with `allow.everyone.if.no.acl.found`.

use serde::{Deserialize, Serialize};

use super::Principal;

/// Kafka's resource types (the numbers are the wire's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    /// A topic.
    Topic = 2,
    /// A consumer group.
    Group = 3,
    /// The cluster (`kafka-cluster`).
    Cluster = 4,
    /// A transactional id.
    TransactionalId = 5,
    /// A delegation token.
    DelegationToken = 6,
    /// A user (for quotas and delegation tokens).
    User = 7,
}

impl ResourceType {
    /// From the wire; `None` for UNKNOWN (0), ANY (1) and unknown codes.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            2 => Self::Topic,
            3 => Self::Group,
            4 => Self::Cluster,
            5 => Self::TransactionalId,
            6 => Self::DelegationToken,
            7 => Self::User,
            _ => return None,
        })
    }
}

/// The name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// How a binding's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// The exact name (`*` matches every name).
    Literal = 3,
    /// Every name starting with it.
    Prefixed = 4,
}

impl PatternType {
    /// From the wire; `None` for UNKNOWN, ANY, MATCH.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(Self::Literal),
            4 => Some(Self::Prefixed),
            _ => None,
        }
    }
}

/// Kafka's ACL operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// Every operation.
    All = 2,
    /// READ.
    Read = 3,
    /// WRITE.
    Write = 4,
    /// CREATE.
    Create = 5,
    /// DELETE.
    Delete = 6,
    /// ALTER.
    Alter = 7,
    /// DESCRIBE.
    Describe = 8,
    /// CLUSTER_ACTION.
    ClusterAction = 9,
    /// DESCRIBE_CONFIGS.
    DescribeConfigs = 10,
    /// ALTER_CONFIGS.
    AlterConfigs = 11,
    /// IDEMPOTENT_WRITE.
    IdempotentWrite = 12,
    /// CREATE_TOKENS.
    CreateTokens = 13,
    /// DESCRIBE_TOKENS.
    DescribeTokens = 14,
    /// TWO_PHASE_COMMIT.
    TwoPhaseCommit = 15,
}

impl Operation {
    /// From the wire; `None` for UNKNOWN (0), ANY (1) and unknown codes.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            2 => Self::All,
            3 => Self::Read,
            4 => Self::Write,
            5 => Self::Create,
            6 => Self::Delete,
            7 => Self::Alter,
            8 => Self::Describe,
            9 => Self::ClusterAction,
            10 => Self::DescribeConfigs,
            11 => Self::AlterConfigs,
            12 => Self::IdempotentWrite,
            13 => Self::CreateTokens,
            14 => Self::DescribeTokens,
            15 => Self::TwoPhaseCommit,
            _ => return None,
        })
    }

    /// The operations a resource type has (Kafka's
    /// `AclEntry.supportedOperations`), for `*_authorized_operations`.
    pub fn supported_by(resource: ResourceType) -> &'static [Operation] {
        use Operation::*;
        match resource {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }

    /// Whether an ALLOW of `self` grants `wanted`.
    fn allows(self, wanted: Operation) -> bool {
        self == Operation::All
            || self == wanted
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }
}

/// ALLOW or DENY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// DENY (wins over any ALLOW).
    Deny = 2,
    /// ALLOW.
    Allow = 3,
}

impl Permission {
    /// From the wire; `None` for UNKNOWN and ANY.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Self::Deny),
            3 => Some(Self::Allow),
            _ => None,
        }
    }
}

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name or prefix (`*` with LITERAL: every resource).
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// A client IP, or `*`.
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// ALLOW or DENY.
    pub permission: Permission,
}

impl AclBinding {
    /// Whether the binding's pattern covers resource `name`.
    fn covers(&self, resource: ResourceType, name: &str) -> bool {
        self.resource_type == resource
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == "*",
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == host || self.host == "*")
    }

    /// Checks a binding from CreateAcls as Kafka does.
    ///
    /// # Errors
    /// Kafka's message for an invalid binding (INVALID_REQUEST).
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err("The only valid name for the CLUSTER resource is kafka-cluster".into());
        }
        let Some((kind, name)) = self.principal.split_once(':') else {
            return Err(format!("Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)", self.principal));
        };
        if kind.is_empty() || name.is_empty() {
            return Err(format!("Invalid principal {}", self.principal));
        }
        if self.host.is_empty() {
            return Err("Invalid host: empty".into());
        }
        Ok(())
    }
}

/// DescribeAcls' and DeleteAcls' filter: every field `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    /// `None`: ANY.
    pub resource_type: Option<ResourceType>,
    /// `None`: any name.
    pub resource_name: Option<String>,
    /// The pattern filter.
    pub pattern: PatternFilter,
    /// `None`: any principal.
    pub principal: Option<String>,
    /// `None`: any host.
    pub host: Option<String>,
    /// `None`: ANY.
    pub operation: Option<Operation>,
    /// `None`: ANY.
    pub permission: Option<Permission>,
}

/// A filter's pattern type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatternFilter {
    /// ANY: the name must equal (when given), whatever the pattern type.
    #[default]
    Any,
    /// MATCH: every binding that would apply to the named resource.
    Match,
    /// Only this pattern type, name equal.
    Exactly(PatternType),
}

impl AclFilter {
    /// Builds a filter from the wire's codes.
    ///
    /// # Errors
    /// UNKNOWN codes, which Kafka refuses (INVALID_REQUEST).
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, String> {
        let any_or = |code: i8, what: &str| -> Result<bool, String> {
            match code {
                1 => Ok(true),
                0 => Err(format!("Filter contains UNKNOWN elements: {what}")),
                _ => Ok(false),
            }
        };
        let resource_type = if any_or(resource_type, "resource type")? {
            None
        } else {
            Some(ResourceType::from_code(resource_type).ok_or("Unknown resource type")?)
        };
        let pattern = match pattern_type {
            1 => PatternFilter::Any,
            2 => PatternFilter::Match,
            code => PatternFilter::Exactly(
                PatternType::from_code(code)
                    .ok_or("Filter contains UNKNOWN elements: pattern type")?,
            ),
        };
        let operation = if any_or(operation, "operation")? {
            None
        } else {
            Some(Operation::from_code(operation).ok_or("Unknown operation")?)
        };
        let permission = if any_or(permission, "permission type")? {
            None
        } else {
            Some(Permission::from_code(permission).ok_or("Unknown permission type")?)
        };
        Ok(Self {
            resource_type,
            resource_name: resource_name.map(str::to_owned),
            pattern,
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation,
            permission,
        })
    }

    /// Whether `binding` passes the filter.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let resource = self
            .resource_type
            .is_none_or(|t| t == binding.resource_type);
        let name = match (self.pattern, &self.resource_name) {
            (PatternFilter::Match, Some(name)) => binding.covers(binding.resource_type, name),
            (PatternFilter::Exactly(p), name) => {
                p == binding.pattern_type
                    && name.as_ref().is_none_or(|n| *n == binding.resource_name)
            }
            (_, Some(name)) => *name == binding.resource_name,
            (_, None) => true,
        };
        resource
            && name
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

/// The authorizer's settings (`authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    super_users: Vec<String>,
    allow_if_no_acl: bool,
}

/// Kafka's KRaft authorizer; strom's is its equivalent.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

impl Authorizer {
    /// The authorizer `authorizer.class.name` names, if any (`None`: every
    /// request is allowed and the ACL APIs answer SECURITY_DISABLED).
    ///
    /// # Errors
    /// A class other than Kafka's StandardAuthorizer.
    pub fn from_config(config: &crate::config::BrokerConfig) -> Result<Option<Self>, String> {
        let class = config.get("authorizer.class.name").unwrap_or("").trim();
        if class.is_empty() {
            return Ok(None);
        }
        if class != STANDARD_AUTHORIZER && class != "kafka.security.authorizer.AclAuthorizer" {
            return Err(format!(
                "authorizer {class} is not supported: use {STANDARD_AUTHORIZER}"
            ));
        }
        Ok(Some(Self {
            super_users: config
                .get("super.users")
                .unwrap_or("")
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            allow_if_no_acl: config.get_bool("allow.everyone.if.no.acl.found"),
        }))
    }

    /// Whether `principal` connected from `host` may do `operation` on
    /// the resource, given every ACL.
    pub fn authorize<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding>,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource: ResourceType,
        name: &str,
    ) -> bool {
        let principal = principal.to_string();
        if self.super_users.contains(&principal) {
            return true;
        }
        let mut any_for_resource = false;
        let mut allowed = false;
        for acl in acls.into_iter().filter(|a| a.covers(resource, name)) {
            any_for_resource = true;
            if !acl.applies_to(&principal, host) {
                continue;
            }
            match acl.permission {
                Permission::Deny
                    if acl.operation == Operation::All || acl.operation == operation =>
                {
                    return false;
                }
                Permission::Allow if acl.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any_for_resource && self.allow_if_no_acl)
    }
}

impl Authorizer {
    /// Whether some resource of `resource` type grants `operation` to the
    /// principal (Kafka's `authorizeByResourceType`: an ALLOW on a literal
    /// or prefixed pattern that no DENY of the same pattern overrides).
    pub fn authorize_any<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource: ResourceType,
    ) -> bool {
        let who = principal.to_string();
        if self.super_users.contains(&who) {
            return true;
        }
        let applies = |a: &&AclBinding| {
            a.resource_type == resource
                && a.applies_to(&who, host)
                && (a.operation == operation || a.operation == Operation::All)
        };
        let denied = |allow: &AclBinding| {
            acls.clone().into_iter().filter(applies).any(|d| {
                d.permission == Permission::Deny
                    && ((d.pattern_type == PatternType::Literal && d.resource_name == "*")
                        || (d.pattern_type == PatternType::Prefixed
                            && allow.resource_name.starts_with(&d.resource_name))
                        || (d.pattern_type == allow.pattern_type
                            && d.resource_name == allow.resource_name))
            })
        };
        acls.clone()
            .into_iter()
            .filter(applies)
            .any(|a| a.permission == Permission::Allow && !denied(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: resource,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    fn authorizer(super_users: &[&str], allow_if_no_acl: bool) -> Authorizer {
        Authorizer {
            super_users: super_users.iter().map(|s| (*s).to_owned()).collect(),
            allow_if_no_acl,
        }
    }

    #[test]
    fn standard_authorizer_rules() {
        use Operation::*;
        use PatternType::*;
        use Permission::*;
        use ResourceType::*;
        let acls = vec![
            acl(Topic, "orders", Literal, "User:alice", Read, Allow),
            acl(Topic, "logs-", Prefixed, "User:*", Write, Allow),
            acl(Topic, "logs-secret", Literal, "User:bob", Write, Deny),
            acl(Group, "*", Literal, "User:alice", All, Allow),
            acl(
                Cluster,
                CLUSTER_NAME,
                Literal,
                "User:ops",
                AlterConfigs,
                Allow,
            ),
        ];
        let a = authorizer(&["User:admin"], false);
        let alice = Principal::user("alice");
        let bob = Principal::user("bob");
        let ops = Principal::user("ops");
        let check = |p: &Principal, op, r, n| a.authorize(&acls, p, "127.0.0.1", op, r, n);
        assert!(check(&alice, Read, Topic, "orders"));
        assert!(
            check(&alice, Describe, Topic, "orders"),
            "READ implies DESCRIBE"
        );
        assert!(!check(&alice, Write, Topic, "orders"));
        assert!(!check(&bob, Read, Topic, "orders"));
        assert!(
            check(&bob, Write, Topic, "logs-app"),
            "prefixed, wildcard principal"
        );
        assert!(
            !check(&bob, Write, Topic, "logs-secret"),
            "deny before allow"
        );
        assert!(check(&alice, Write, Topic, "logs-secret"));
        assert!(
            check(&alice, Delete, Group, "any-group"),
            "ALL on wildcard name"
        );
        assert!(
            check(&ops, DescribeConfigs, Cluster, CLUSTER_NAME),
            "ALTER_CONFIGS implies DESCRIBE_CONFIGS"
        );
        assert!(!check(&ops, Alter, Cluster, CLUSTER_NAME));
        assert!(
            check(&Principal::user("admin"), Delete, Topic, "orders"),
            "super user"
        );
        assert!(
            !check(&alice, Read, Topic, "no-acls"),
            "no ACL: denied by default"
        );
        let open = authorizer(&[], true);
        assert!(open.authorize(&acls, &alice, "h", Read, Topic, "no-acls"));
        assert!(
            !open.authorize(&acls, &bob, "h", Read, Topic, "orders"),
            "ACLs exist: no fallback"
        );
    }

    #[test]
    fn filters() {
        use Operation::*;
        use PatternType::*;
        use Permission::*;
        use ResourceType::*;
        let literal = acl(Topic, "orders", Literal, "User:alice", Read, Allow);
        let prefixed = acl(Topic, "ord", Prefixed, "User:alice", Read, Allow);
        let wildcard = acl(Topic, "*", Literal, "User:bob", Write, Deny);
        let all = AclFilter::default();
        assert!(all.matches(&literal) && all.matches(&prefixed) && all.matches(&wildcard));
        let matching = AclFilter {
            resource_name: Some("orders".into()),
            pattern: PatternFilter::Match,
            ..AclFilter::default()
        };
        assert!(
            matching.matches(&literal)
                && matching.matches(&prefixed)
                && matching.matches(&wildcard)
        );
        let exact = AclFilter::from_wire(2, Some("ord"), 4, None, None, 1, 1).unwrap();
        assert!(exact.matches(&prefixed) && !exact.matches(&literal));
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
    }
}
