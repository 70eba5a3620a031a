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
