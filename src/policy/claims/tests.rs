use serde_json::json;

use super::*;
use crate::policy::test_support::claims;

fn rule(path: &str, condition: &str) -> ClaimRule {
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {condition}"))
        .unwrap()
        .remove("v")
        .unwrap();
    ClaimRule {
        path: ClaimPath::parse(path).unwrap(),
        condition: Condition::from_toml(&value).unwrap(),
    }
}

fn condition_error(condition: &str) -> String {
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {condition}"))
        .unwrap()
        .remove("v")
        .unwrap();
    Condition::from_toml(&value).unwrap_err()
}

fn holds(rule: &ClaimRule, extra: serde_json::Value) -> bool {
    rule.holds(&claims(&["admin"], extra))
}

#[test]
fn bare_values_are_equality_with_the_same_type() {
    let tenant = rule("tenant", r#""acme""#);
    assert!(holds(&tenant, json!({"tenant": "acme"})));
    assert!(!holds(&tenant, json!({"tenant": "Acme"})));
    assert!(!holds(&tenant, json!({})));
    let level = rule("level", "3");
    assert!(holds(&level, json!({"level": 3})));
    for other in [json!("3"), json!(3.0), json!(true), json!([3])] {
        assert!(!holds(&level, json!({ "level": other })), "{other}");
    }
    let verified = rule("email_verified", "true");
    assert!(holds(&verified, json!({"email_verified": true})));
    assert!(!holds(&verified, json!({"email_verified": "true"})));
    assert!(!holds(&verified, json!({"email_verified": 1})));
}

#[test]
fn equality_never_matches_an_array_or_object_claim() {
    let tenant = rule("tenant", r#""acme""#);
    assert!(!holds(&tenant, json!({"tenant": ["acme"]})));
    assert!(!holds(&tenant, json!({"tenant": {"acme": true}})));
    assert!(!holds(&tenant, json!({"tenant": null})));
}

#[test]
fn contains_needs_an_array_claim_holding_the_value() {
    let groups = rule("groups", r#"{ contains = "ops" }"#);
    assert!(holds(&groups, json!({"groups": ["dev", "ops"]})));
    assert!(!holds(&groups, json!({"groups": ["dev", "ops-team"]})));
    // A string never matches an array condition: no substring, no splitting.
    assert!(!holds(&groups, json!({"groups": "ops"})));
    assert!(!holds(&groups, json!({"groups": "dev ops"})));
    assert!(!holds(&groups, json!({"groups": [["ops"]]})));
    let ids = rule("ids", "{ contains = 7 }");
    assert!(holds(&ids, json!({"ids": [1, 7]})));
    assert!(!holds(&ids, json!({"ids": ["7"]})));
}

#[test]
fn one_of_needs_a_scalar_claim_equal_to_one_value() {
    let plan = rule("plan", r#"{ one_of = ["pro", "team"] }"#);
    assert!(holds(&plan, json!({"plan": "team"})));
    assert!(!holds(&plan, json!({"plan": "free"})));
    // An array claim never matches a list of allowed values, even one holding only them.
    assert!(!holds(&plan, json!({"plan": ["pro"]})));
    assert!(!holds(&plan, json!({"plan": ["pro", "team"]})));
}

#[test]
fn explicit_equals_is_the_same_as_a_bare_value() {
    assert_eq!(rule("a", r#"{ equals = "x" }"#), rule("a", r#""x""#));
}

#[test]
fn dotted_paths_walk_nested_objects() {
    let nested = rule("org.team.name", r#""core""#);
    assert!(holds(&nested, json!({"org": {"team": {"name": "core"}}})));
    // A top-level key that happens to contain the dots is a different claim.
    assert!(!holds(&nested, json!({"org.team.name": "core"})));
    assert!(!holds(&nested, json!({"org": {"team": "core"}})));
    assert!(!holds(
        &nested,
        json!({"org": [{"team": {"name": "core"}}]})
    ));
}

#[test]
fn bracketed_names_may_contain_dots() {
    let namespaced = rule("[https://example.com/claims].tenant", r#""acme""#);
    let token = json!({"https://example.com/claims": {"tenant": "acme"}});
    assert!(holds(&namespaced, token));
    let whole = rule("[a.b]", "1");
    assert!(holds(&whole, json!({"a.b": 1})));
    assert!(!holds(&whole, json!({"a": {"b": 1}})));
}

#[test]
fn registered_string_claims_and_roles_are_reachable() {
    assert!(holds(&rule("sub", r#""alice""#), json!({})));
    assert!(holds(&rule("iss", r#"{ one_of = ["i", "j"] }"#), json!({})));
    assert!(holds(
        &rule("roles", r#"{ contains = "admin" }"#),
        json!({})
    ));
    assert!(!holds(&rule("roles", r#""admin""#), json!({})));
    assert!(!holds(&rule("sub", r#"{ contains = "alice" }"#), json!({})));
}

#[test]
fn sign_in_methods_and_provider_are_reachable_as_fields_or_as_a_providers_claims() {
    let mut own = claims(&[], json!({}));
    own.amr = vec!["pwd".into(), "otp".into()];
    own.idp = Some("corp".into());
    assert!(rule("amr", r#"{ contains = "otp" }"#).holds(&own));
    assert!(!rule("amr", r#"{ contains = "hwk" }"#).holds(&own));
    assert!(rule("idp", r#""corp""#).holds(&own));
    // A provider's token keeps its own amr in extra.
    let provider = json!({"amr": ["pwd", "hwk"]});
    assert!(holds(&rule("amr", r#"{ contains = "hwk" }"#), provider));
    assert!(!holds(&rule("idp", r#""corp""#), json!({})));
    assert!(ClaimPath::parse("amr.x").is_err());
}

#[test]
fn bad_paths_are_refused_with_the_reason() {
    for (path, why) in [
        ("", "empty name"),
        ("a..b", "empty name"),
        (".a", "empty name"),
        ("a.", "empty name"),
        ("[a.b", "unclosed '['"),
        ("[]", "empty name"),
        ("[a]b", "expected '.' after ']'"),
        ("a]", "'[' or ']' inside a name"),
        ("[a[b]", "'[' or ']' inside a name"),
    ] {
        let err = ClaimPath::parse(path).unwrap_err();
        assert!(
            err.starts_with(&format!("invalid claim path \"{path}\": {why} (")),
            "{path}: {err}"
        );
    }
    let deep = vec!["a"; 17].join(".");
    assert!(ClaimPath::parse(&deep)
        .unwrap_err()
        .contains("deeper than 16"));
    let err = ClaimPath::parse("exp").unwrap_err();
    assert!(err.contains("checked by token verification"), "{err}");
    let err = ClaimPath::parse("sub.x").unwrap_err();
    assert!(err.contains("\"sub\" has no members"), "{err}");
}

#[test]
fn bad_conditions_are_refused_with_what_was_expected() {
    let unknown = condition_error(r#"{ has = "x" }"#);
    assert_eq!(
        unknown,
        "unknown claim operator \"has\" (expected one of: equals, contains, one_of)"
    );
    assert!(condition_error("{}").contains("exactly one operator"));
    assert!(condition_error(r#"{ equals = "a", contains = "b" }"#).contains("found 2"));
    assert_eq!(
        condition_error("{ one_of = [] }"),
        "one_of must list at least one value"
    );
    assert!(condition_error(r#"{ one_of = "pro" }"#).contains("expected a list"));
    assert!(condition_error(r#"["a"]"#).starts_with("an array is not a claim value"));
    assert!(condition_error("1.5").starts_with("a float is not a claim value"));
    assert!(condition_error(r#"{ contains = ["a"] }"#).starts_with("contains: an array"));
    assert!(condition_error(r#"{ one_of = [["a"]] }"#).starts_with("one_of: an array"));
    assert!(condition_error("{ equals = { a = 1 } }").contains("a table is not"));
}

#[test]
fn rules_display_as_written() {
    assert_eq!(
        rule("org.tenant", r#""acme""#).to_string(),
        "org.tenant = \"acme\""
    );
    assert_eq!(
        rule("groups", r#"{ contains = "ops" }"#).to_string(),
        "groups contains \"ops\""
    );
    assert_eq!(
        rule("plan", r#"{ one_of = ["pro", 2, true] }"#).to_string(),
        "plan one of [\"pro\", 2, true]"
    );
}
