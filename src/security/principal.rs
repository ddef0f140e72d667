//! Principals (`User:alice`) and the names TLS client certificates give:
//! the subject in RFC 2253 form (as Java's `X500Principal.getName()`),
//! mapped by `ssl.principal.mapping.rules`.

use std::fmt;

use regex::Regex;

/// An authenticated identity, as ACLs name it (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The principal type; Kafka's default builder always says `User`.
    pub kind: String,
    /// The name.
    pub name: String,
}

impl Principal {
    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: PLAINTEXT connections and TLS without a client
    /// certificate.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// The subject of a DER certificate in RFC 2253 form, most specific
/// attribute first (`CN=alice,OU=eng,O=strom`), as Java prints it.
/// `None` when the certificate does not parse.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in certificate.subject().iter() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type().to_id_string();
                let value = attribute
                    .as_str()
                    .map(escape)
                    .unwrap_or_else(|_| format!("#{}", hex(attribute.attr_value().data)));
                format!("{}={value}", keyword(&oid).unwrap_or(&oid))
            })
            .collect();
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The keywords Java's RFC 2253 output uses; other attributes print as
/// their dotted OID.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ssl.principal.mapping.rules`: `RULE:pattern/replacement/[LU]` entries
/// and `DEFAULT` (the whole subject), tried in order; a subject no rule
/// matches is used whole.
#[derive(Debug, Clone)]
pub struct MappingRules(Vec<Rule>);

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

impl MappingRules {
    /// Parses the rules.
    ///
    /// # Errors
    /// A rule that is neither `DEFAULT` nor `RULE:p/r/[LU]`, or a bad regex.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) =
                    until_slash(after).ok_or_else(|| format!("Invalid rule: {rest}"))?;
                let (replacement, after) =
                    until_slash(after).ok_or_else(|| format!("Invalid rule: {rest}"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("Invalid rule pattern {pattern}: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!("Invalid rule: {rest}"));
            }
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        Ok(Self(rules))
    }

    /// The short name for a certificate subject.
    pub fn apply(&self, subject: &str) -> String {
        for rule in &self.0 {
            match rule {
                Rule::Default => return subject.to_owned(),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(subject) {
                        let name = pattern.replace(subject, replacement.as_str()).into_owned();
                        return match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        };
                    }
                }
            }
        }
        subject.to_owned()
    }
}

/// Text up to the next unescaped `/` (unescaping `\/`), and what follows it.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if text[i + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references as the regex crate's `${1}`.
fn java_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push_str("${");
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                out.push(d);
            }
            out.push('}');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keeps_the_whole_subject() {
        let rules = MappingRules::parse("DEFAULT").unwrap();
        assert_eq!(
            rules.apply("CN=alice,OU=eng,O=strom"),
            "CN=alice,OU=eng,O=strom"
        );
    }

    #[test]
    fn rules_as_kafka_documents_them() {
        let rules = MappingRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules.apply("CN=serviceuser,OU=ServiceUsers,O=Unknown"),
            "serviceuser"
        );
        assert_eq!(
            rules.apply("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"),
            "adminuser@admin"
        );
        assert_eq!(rules.apply("CN=other"), "CN=other");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(MappingRules::parse("RULE:^CN=(.*$/$1/").is_err());
        assert!(MappingRules::parse("nonsense").is_err());
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" lead"), "\\ lead");
    }
}
