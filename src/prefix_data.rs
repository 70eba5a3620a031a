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
mod tests {
    use super::*;

    const PATH: &str = "/myproject/switchman";

    fn parse(json: &str) -> PrefixData {
        PrefixData::parse(PATH, json.as_bytes()).expect("valid prefix data")
    }

    /// The message of a config error; any other outcome fails the test.
    fn config_error(data: &[u8]) -> String {
        match PrefixData::parse(PATH, data) {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error for {data:?}, got {other:?}"),
        }
    }

    fn hosts(data: &PrefixData, group: &str) -> Vec<String> {
        data.hosts_of(group)
            .expect("defined group")
            .into_iter()
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_data_means_no_groups_and_no_resources() {
        assert_eq!(PrefixData::parse(PATH, b"").unwrap(), PrefixData::default());
    }

    #[test]
    fn whitespace_only_data_means_no_groups_and_no_resources() {
        for data in [&b" "[..], b"\n", b"\r\n", b" \t \n  "] {
            assert_eq!(
                PrefixData::parse(PATH, data).unwrap(),
                PrefixData::default(),
                "{data:?}"
            );
        }
    }

    #[test]
    fn empty_object_and_absent_keys_mean_nothing_defined() {
        assert_eq!(parse("{}"), PrefixData::default());
        assert_eq!(parse(r#"{"resources": ["db"]}"#).groups, BTreeMap::new());
        assert!(parse(r#"{"groups": {"g": "h"}}"#).resources.is_empty());
    }

    #[test]
    fn full_example_parses() {
        let data = parse(
            r#"{"groups": {"web": ["w1.example.com", "w2.example.com"], "one": "db.example.com"},
                "resources": ["FQDN_mem", "cpu"]}"#,
        );
        assert_eq!(data.resources, vec!["FQDN_mem", "cpu"]);
        assert_eq!(
            data.groups["web"],
            vec!["w1.example.com".to_string(), "w2.example.com".to_string()]
        );
        assert_eq!(data.groups["one"], vec!["db.example.com".to_string()]);
    }

    #[test]
    fn other_keys_are_ignored() {
        let data = parse(r#"{"comment": {"any": [1, null]}, "version": 3, "resources": ["r"]}"#);
        assert_eq!(data.resources, vec!["r"]);
        assert!(data.groups.is_empty());
    }

    #[test]
    fn perl_stamp_is_a_config_error_that_explains_itself() {
        for data in [
            &b"host1.example.com 1234"[..],
            b"host1 1",
            b"host1.example.com 1234\n",
        ] {
            let message = config_error(data);
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("host1"), "{message}");
            assert!(message.contains("Perl switchman"), "{message}");
            assert!(message.contains("{fqdn} {pid}"), "{message}");
        }
    }

    #[test]
    fn other_non_json_is_a_plain_config_error() {
        for data in [
            &b"host1.example.com"[..],
            b"host1 12a",
            b"host1  1234",
            b"{\"groups\": ",
            b"\xff\xfe",
        ] {
            let message = config_error(data);
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("not valid JSON"), "{message}");
            assert!(!message.contains("Perl"), "{message}");
        }
    }

    #[test]
    fn data_that_is_not_an_object_is_a_config_error() {
        for (json, kind) in [
            ("[]", "an array"),
            (r#"["groups"]"#, "an array"),
            ("42", "a number"),
            (r#""text""#, "a string"),
            ("null", "null"),
            ("true", "a boolean"),
        ] {
            let message = config_error(json.as_bytes());
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("JSON object"), "{message}");
            assert!(message.contains(kind), "{json}: {message}");
        }
    }

    #[test]
    fn resources_that_are_not_an_array_are_a_config_error() {
        for json in [
            r#"{"resources": "db"}"#,
            r#"{"resources": {"db": 1}}"#,
            r#"{"resources": 1}"#,
            r#"{"resources": null}"#,
            r#"{"resources": false}"#,
        ] {
            let message = config_error(json.as_bytes());
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("\"resources\""), "{message}");
            assert!(message.contains("must be an array"), "{message}");
        }
    }

    #[test]
    fn resource_items_must_be_strings() {
        for json in [
            r#"{"resources": ["ok", 1]}"#,
            r#"{"resources": ["ok", null]}"#,
            r#"{"resources": ["ok", ["nested"]]}"#,
            r#"{"resources": ["ok", {"a": "b"}]}"#,
        ] {
            let message = config_error(json.as_bytes());
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("\"resources\" item 1"), "{message}");
        }
    }

    #[test]
    fn groups_that_are_not_an_object_are_a_config_error() {
        for json in [
            r#"{"groups": ["web"]}"#,
            r#"{"groups": "web"}"#,
            r#"{"groups": 1}"#,
            r#"{"groups": null}"#,
        ] {
            let message = config_error(json.as_bytes());
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("\"groups\""), "{message}");
            assert!(message.contains("must be an object"), "{message}");
        }
    }

    #[test]
    fn members_of_the_wrong_type_are_a_config_error_naming_group_and_member() {
        for (json, member) in [
            (r#"{"groups": {"web": ["h1", 42]}}"#, "a number (42)"),
            (
                r#"{"groups": {"web": ["h1", {"h": 1}]}}"#,
                r#"an object ({"h":1})"#,
            ),
            (r#"{"groups": {"web": ["h1", null]}}"#, "null (null)"),
            (
                r#"{"groups": {"web": ["h1", ["h2"]]}}"#,
                r#"an array (["h2"])"#,
            ),
            (r#"{"groups": {"web": ["h1", true]}}"#, "a boolean (true)"),
        ] {
            let message = config_error(json.as_bytes());
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("group \"web\""), "{message}");
            assert!(message.contains(member), "{json}: {message}");
            assert!(message.contains("member 1 is"), "{message}");
        }
    }

    #[test]
    fn group_values_of_the_wrong_type_are_a_config_error_naming_the_group() {
        for json in [
            r#"{"groups": {"web": 42}}"#,
            r#"{"groups": {"web": null}}"#,
            r#"{"groups": {"web": {"h1": true}}}"#,
            r#"{"groups": {"web": false}}"#,
        ] {
            let message = config_error(json.as_bytes());
            assert!(message.contains(PATH), "{message}");
            assert!(message.contains("group \"web\""), "{message}");
        }
    }

    #[test]
    fn a_bad_group_fails_parsing_even_if_unused() {
        let message = config_error(br#"{"groups": {"good": ["h1"], "unused": [1]}}"#);
        assert!(message.contains("group \"unused\""), "{message}");
    }

    #[test]
    fn huge_bad_members_are_cut_short_in_messages() {
        let big = format!(
            r#"{{"groups": {{"web": [{{"k": "{}"}}]}}}}"#,
            "x".repeat(10_000)
        );
        let message = config_error(big.as_bytes());
        assert!(message.len() < 400, "{} chars", message.len());
        assert!(message.contains("..."), "{message}");
    }

    #[test]
    fn single_string_group_is_one_host() {
        let data = parse(r#"{"groups": {"db": "db1.example.com"}}"#);
        assert_eq!(hosts(&data, "db"), vec!["db1.example.com"]);
        assert!(data.contains("db", "db1.example.com").unwrap());
    }

    #[test]
    fn single_string_naming_a_group_expands() {
        let data = parse(r#"{"groups": {"alias": "web", "web": ["w1", "w2"]}}"#);
        assert_eq!(hosts(&data, "alias"), vec!["w1", "w2"]);
    }

    #[test]
    fn empty_list_is_a_valid_empty_group() {
        let data = parse(r#"{"groups": {"drained": [], "all": ["drained", "h1"]}}"#);
        assert!(data.hosts_of("drained").unwrap().is_empty());
        assert!(!data.contains("drained", "h1").unwrap());
        assert_eq!(hosts(&data, "all"), vec!["h1"]);
    }

    #[test]
    fn hosts_are_sorted_and_deduplicated() {
        let data = parse(r#"{"groups": {"g": ["b", "a", "b", "sub"], "sub": ["a", "c"]}}"#);
        assert_eq!(hosts(&data, "g"), vec!["a", "b", "c"]);
    }

    #[test]
    fn nesting_five_deep_expands_every_level() {
        let data = parse(
            r#"{"groups": {
                "l1": ["h1", "l2"], "l2": ["h2", "l3"], "l3": ["h3", "l4"],
                "l4": ["h4", "l5"], "l5": ["h5"]}}"#,
        );
        assert_eq!(hosts(&data, "l1"), vec!["h1", "h2", "h3", "h4", "h5"]);
        assert_eq!(hosts(&data, "l4"), vec!["h4", "h5"]);
        assert!(data.contains("l1", "h5").unwrap());
        assert!(!data.contains("l2", "h1").unwrap());
    }

    #[test]
    fn very_deep_nesting_does_not_overflow_the_stack() {
        let depth = 100_000;
        let groups: BTreeMap<String, Vec<String>> = (0..depth)
            .map(|i| {
                let next = if i + 1 < depth {
                    format!("g{}", i + 1)
                } else {
                    "g0".to_string()
                };
                (format!("g{i}"), vec![format!("h{i}"), next])
            })
            .collect();
        let data = PrefixData {
            groups,
            resources: Vec::new(),
        };
        let all = data.hosts_of("g0").unwrap();
        assert_eq!(all.len(), depth);
        assert!(all.contains("h99999"));
    }

    #[test]
    fn two_group_loop_terminates_and_counts_both_sides() {
        let data = parse(r#"{"groups": {"a": ["ha", "b"], "b": ["hb", "a"]}}"#);
        assert_eq!(hosts(&data, "a"), vec!["ha", "hb"]);
        assert_eq!(hosts(&data, "b"), vec!["ha", "hb"]);
        assert!(data.contains("a", "hb").unwrap());
    }

    #[test]
    fn self_loop_terminates() {
        let data = parse(r#"{"groups": {"a": ["a", "h1"], "only_self": "only_self"}}"#);
        assert_eq!(hosts(&data, "a"), vec!["h1"]);
        assert!(data.hosts_of("only_self").unwrap().is_empty());
    }

    #[test]
    fn longer_loop_reached_midway_counts_all_members() {
        let data = parse(
            r#"{"groups": {"entry": ["x", "c1"], "c1": ["h1", "c2"], "c2": ["h2", "c3"],
                "c3": ["h3", "c1", "entry"]}}"#,
        );
        assert_eq!(hosts(&data, "entry"), vec!["h1", "h2", "h3", "x"]);
        assert_eq!(hosts(&data, "c2"), vec!["h1", "h2", "h3", "x"]);
    }

    #[test]
    fn undefined_group_is_a_config_error_naming_it() {
        let data = parse(r#"{"groups": {"web": ["w1"]}}"#);
        for result in [
            data.hosts_of("db").map(|_| ()),
            data.contains("db", "w1").map(|_| ()),
        ] {
            match result {
                Err(Error::Config(message)) => assert!(message.contains("\"db\""), "{message}"),
                other => panic!("expected a config error, got {other:?}"),
            }
        }
        assert!(PrefixData::default().hosts_of("web").is_err());
    }

    #[test]
    fn group_lookup_is_exact() {
        let data = parse(r#"{"groups": {"web": ["w1"]}}"#);
        assert!(data.hosts_of("Web").is_err());
        assert!(data.hosts_of("web ").is_err());
    }

    #[test]
    fn host_comparison_is_exact() {
        let data = parse(r#"{"groups": {"web": ["Host1.Example.com", "host2.example.com"]}}"#);
        assert!(data.contains("web", "Host1.Example.com").unwrap());
        assert!(!data.contains("web", "host1.example.com").unwrap());
        assert!(!data.contains("web", "HOST2.EXAMPLE.COM").unwrap());
        assert!(!data.contains("web", "host2.example.com.").unwrap());
        assert!(!data.contains("web", " host2.example.com").unwrap());
        assert!(!data.contains("web", "host2").unwrap());
        assert!(!data.contains("web", "").unwrap());
    }

    #[test]
    fn hosts_are_not_trimmed_when_parsed() {
        let data = parse(r#"{"groups": {"web": [" h1 "]}}"#);
        assert_eq!(hosts(&data, "web"), vec![" h1 "]);
        assert!(!data.contains("web", "h1").unwrap());
    }

    #[test]
    fn item_naming_a_group_expands_instead_of_being_a_host() {
        let data = parse(
            r#"{"groups": {"web": ["db1.example.com", "w1"],
                "db1.example.com": ["db2.example.com"]}}"#,
        );
        assert_eq!(hosts(&data, "web"), vec!["db2.example.com", "w1"]);
        assert!(!data.contains("web", "db1.example.com").unwrap());
    }

    #[test]
    fn expansion_never_includes_the_group_name_itself() {
        let data = parse(r#"{"groups": {"h1": ["h1", "h2"], "outer": ["h1"]}}"#);
        assert_eq!(hosts(&data, "h1"), vec!["h2"]);
        assert_eq!(hosts(&data, "outer"), vec!["h2"]);
    }

    #[test]
    fn unicode_names_survive() {
        let data = parse(r#"{"groups": {"грузия": ["хост.example"]}, "resources": ["ресурс"]}"#);
        assert_eq!(hosts(&data, "грузия"), vec!["хост.example"]);
        assert_eq!(data.resources, vec!["ресурс"]);
    }

    #[test]
    fn stamp_detection() {
        assert!(is_perl_stamp("host1.example.com 1234"));
        assert!(is_perl_stamp("h 0"));
        assert!(!is_perl_stamp("host1.example.com"));
        assert!(!is_perl_stamp(" 1234"));
        assert!(!is_perl_stamp("host 12 34"));
        assert!(!is_perl_stamp("host -1"));
        assert!(!is_perl_stamp("host "));
    }

    #[test]
    fn errors_map_to_the_config_exit_code() {
        let err = PrefixData::parse(PATH, b"[]").unwrap_err();
        assert_eq!(err.exit_code(), 78);
        assert!(err.to_string().starts_with("config error: prefix znode "));
    }

    #[test]
    fn hosts_of_returns_the_expanded_set() {
        let data = parse(r#"{"groups": {"g": ["a", "sub"], "sub": ["b"]}}"#);
        assert_eq!(data.hosts_of("g").unwrap(), set(&["a", "b"]));
    }
}
