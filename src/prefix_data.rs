//! The data of the prefix znode (for example `/myproject/switchman`): host groups and known
//! resources, shared with the original Perl switchman, so its format is a compatibility promise.
//!
//! The data is a JSON object `{"groups": {...}, "resources": [...]}`; other keys are ignored so
//! that operators may keep notes or future settings next to ours. `groups` maps a group name to a
//! host or a list of hosts, and a member that is itself a group name stands for that group's
//! members, to any depth.
//!
//! Decisions where the contract leaves room, and why:
//!
//! - Zero bytes, or only ASCII whitespace, mean no groups and no resources. A znode created
//!   without data is the normal state of a fresh prefix, and a stray newline from
//!   `zkCli set` of a file says nothing more than an empty znode does. (The Perl tool failed
//!   on whitespace; accepting it cannot change the meaning of any working setup.)
//! - The bytes `"{fqdn} {pid}"` (e.g. `host1.example.com 1234`), which the Perl tool wrote into
//!   a prefix znode it created itself, are a config error with a message that explains where they
//!   come from. The Perl tool failed on them too, so no working deployment depends on them, and
//!   guessing that some non-JSON bytes mean "empty" could hide a garbled config; the message
//!   tells the operator the one fix needed.
//! - `null` (or `false`, `0`, `""`) under `groups` or `resources` is a config error rather than
//!   "absent", although Perl let any false value pass: the contract asks for an object and an
//!   array, and a null there is more likely a broken template than an intent.
//! - Every group is checked when the data is parsed, not only the groups a run asks about, so a
//!   broken prefix is reported by whichever run reads it first instead of lurking until someone
//!   uses the broken group. Perl silently turned a number member into a host and an object member
//!   into a host named `HASH(0x...)`; we refuse both.
//! - An item that names a group always expands to that group, even when the same name is also
//!   meant as a host (the Perl rule, kept for compatibility): with `{"web": ["db1"], "db1":
//!   ["db2"]}`, group `web` is `{db2}` and does *not* contain `db1`. The expansion never adds a
//!   group's own name as a host.
//! - A group mapping to `[]` is a valid empty group: nobody services it, which is how an operator
//!   drains a group without deleting it (and so without breaking runs that name it).
//! - Hosts are compared exactly, as the Perl tool did with `eq`: no case folding, no trimming, no
//!   trailing-dot normalisation. FQDNs are compared against what the host reports, and any
//!   "helpful" normalisation would make two tools disagree about who services a group.
//! - Resource names are kept verbatim; macro expansion (`CPU`, `FQDN`, `MEMMB`) belongs to the
//!   caller, since it depends on the host and not on the data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::Error;

/// The parsed, validated data of the prefix znode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefixData {
    /// Group name to its items as written (hosts or group names), a single string already turned
    /// into a one-item list.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Resource names as written, in order, macros not expanded.
    pub resources: Vec<String>,
}

impl PrefixData {
    /// Parses the prefix znode's data; absent data is passed as an empty slice.
    ///
    /// `path` is the znode, used only in error messages.
    pub fn parse(path: &str, data: &[u8]) -> Result<PrefixData, Error> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(PrefixData::default());
        }
        let value: Value = match serde_json::from_slice(data) {
            Ok(value) => value,
            Err(err) => return Err(not_json(path, data, &err)),
        };
        let Value::Object(object) = value else {
            return Err(Error::Config(format!(
                "prefix znode {path}: data must be a JSON object with \"groups\" and \
                 \"resources\", got {}",
                shown(&value)
            )));
        };
        let resources = match object.get("resources") {
            None => Vec::new(),
            Some(value) => parse_resources(path, value)?,
        };
        let groups = match object.get("groups") {
            None => BTreeMap::new(),
            Some(value) => parse_groups(path, value)?,
        };
        Ok(PrefixData { groups, resources })
    }

    /// All hosts of `group`, nested groups expanded, sorted and deduplicated.
    ///
    /// Error::Config naming the group if it is not defined.
    pub fn hosts_of(&self, group: &str) -> Result<BTreeSet<String>, Error> {
        let Some((start, _)) = self.groups.get_key_value(group) else {
            return Err(Error::Config(format!(
                "group {group:?} is not defined in \"groups\" of the prefix znode"
            )));
        };
        // An explicit stack instead of recursion, so that nesting as deep as the data allows
        // cannot overflow the stack; `seen` makes loops terminate while the members of every
        // group reached, through a loop or not, still count.
        let mut seen: BTreeSet<&str> = BTreeSet::from([start.as_str()]);
        let mut pending: Vec<&str> = vec![start.as_str()];
        let mut hosts = BTreeSet::new();
        while let Some(current) = pending.pop() {
            for item in &self.groups[current] {
                if self.groups.contains_key(item) {
                    if seen.insert(item) {
                        pending.push(item);
                    }
                } else {
                    hosts.insert(item.clone());
                }
            }
        }
        Ok(hosts)
    }

    /// Whether `host` is one of the hosts of `group` (exact comparison).
    ///
    /// Error::Config if the group is not defined: a run for an unknown group is a mistake to
    /// report, not a host that merely does not service it.
    pub fn contains(&self, group: &str, host: &str) -> Result<bool, Error> {
        Ok(self.hosts_of(group)?.contains(host))
    }
}

/// The error for data that is neither empty nor JSON, recognising the Perl tool's stamp so the
/// operator learns where those bytes come from instead of only seeing a JSON syntax error.
fn not_json(path: &str, data: &[u8], err: &serde_json::Error) -> Error {
    if let Ok(text) = std::str::from_utf8(data)
        && is_perl_stamp(text.trim_ascii())
    {
        return Error::Config(format!(
            "prefix znode {path} holds {:?}, not JSON: this is the \"{{fqdn}} {{pid}}\" stamp \
             the original Perl switchman wrote into a prefix znode it created (the Perl tool \
             could not run with it either); set the znode's data to a JSON object such as \
             {{\"groups\": {{}}, \"resources\": []}}, or to nothing",
            text.trim_ascii()
        ));
    }
    Error::Config(format!(
        "prefix znode {path}: data is not valid JSON ({err}); expected an object like \
         {{\"groups\": {{...}}, \"resources\": [...]}}"
    ))
}

/// `"{fqdn} {pid}"`: one word without whitespace, one space, decimal digits.
fn is_perl_stamp(text: &str) -> bool {
    let Some((host, pid)) = text.split_once(' ') else {
        return false;
    };
    !host.is_empty()
        && !host.chars().any(char::is_whitespace)
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
}

fn parse_resources(path: &str, value: &Value) -> Result<Vec<String>, Error> {
    let Value::Array(items) = value else {
        return Err(Error::Config(format!(
            "prefix znode {path}: \"resources\" must be an array of resource names, got {}",
            shown(value)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(name) => Ok(name.clone()),
            other => Err(Error::Config(format!(
                "prefix znode {path}: \"resources\" item {index} is {}; resource names must be \
                 strings",
                shown(other)
            ))),
        })
        .collect()
}

fn parse_groups(path: &str, value: &Value) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let Value::Object(entries) = value else {
        return Err(Error::Config(format!(
            "prefix znode {path}: \"groups\" must be an object mapping group names to hosts, \
             got {}",
            shown(value)
        )));
    };
    let mut groups = BTreeMap::new();
    for (name, members) in entries {
        let members = match members {
            Value::String(host) => vec![host.clone()],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::String(member) => Ok(member.clone()),
                    other => Err(Error::Config(format!(
                        "prefix znode {path}: group {name:?} in \"groups\": member {index} is {}; \
                         members must be strings (host or group names)",
                        shown(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(Error::Config(format!(
                    "prefix znode {path}: group {name:?} in \"groups\" must be a host, a group \
                     name or a list of them, got {}",
                    shown(other)
                )));
            }
        };
        groups.insert(name.clone(), members);
    }
    Ok(groups)
}

/// A JSON value for an error message: its type in words and its text, cut short because a
/// misplaced object could be the size of the whole config and the message must stay one line.
fn shown(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{kind} ({}...)", &text[..cut]),
        None => format!("{kind} ({text})"),
    }
}

#[cfg(test)]
mod tests;
