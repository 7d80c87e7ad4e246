//! OAuth scopes of a token: the space-delimited `scope` string (RFC 9068, RFC 8693) and the
//! `scp` claim, an array (Okta) or a space-delimited string (Microsoft Entra ID).
//!
//! A token's scopes are the union of both claims. A `scope` that is not a string grants
//! nothing: RFC 9068 defines it as a string, so an array there is malformed, not a list.

use serde_json::Value;

use crate::token::Claims;

/// Whether `scope` is a valid scope token (RFC 6749 3.3): printable ASCII, no space,
/// no `"` or `\`. Configured scopes are held to this, so they can never contain a separator.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Whether the token grants `scope` through `scope` or `scp`.
pub fn has_scope(claims: &Claims, scope: &str) -> bool {
    let in_list = |list: &str| list.split(' ').any(|granted| granted == scope);
    let from_scope =
        matches!(claims.extra.get("scope"), Some(Value::String(list)) if in_list(list));
    from_scope
        || match claims.extra.get("scp") {
            Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(scope)),
            Some(Value::String(list)) => in_list(list),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::claims;
    use serde_json::json;

    #[test]
    fn scope_string_is_split_on_spaces_only() {
        let c = claims(&[], json!({"scope": "read:orders  write:orders\tadmin"}));
        assert!(has_scope(&c, "read:orders"));
        // A tab is not a separator: "write:orders\tadmin" is one (odd) scope.
        assert!(!has_scope(&c, "write:orders"));
        assert!(!has_scope(&c, "admin"));
        assert!(!has_scope(&c, "read"), "no prefix matching");
    }

    #[test]
    fn scp_array_and_scp_string_both_count() {
        let okta = claims(&[], json!({"scp": ["read:orders", 7, "write:orders"]}));
        assert!(has_scope(&okta, "write:orders"));
        let entra = claims(&[], json!({"scp": "User.Read Mail.Read"}));
        assert!(has_scope(&entra, "Mail.Read"));
        let element_with_space = claims(&[], json!({"scp": ["a b"]}));
        assert!(!has_scope(&element_with_space, "a"));
    }

    #[test]
    fn both_claims_present_is_the_union() {
        let c = claims(&[], json!({"scope": "a", "scp": ["b"]}));
        assert!(has_scope(&c, "a") && has_scope(&c, "b"));
    }

    #[test]
    fn scope_claim_of_another_type_grants_nothing() {
        for scope in [json!(["a"]), json!({"a": true}), json!(1), json!(null)] {
            let c = claims(&[], json!({ "scope": scope }));
            assert!(!has_scope(&c, "a"), "{c:?}");
        }
        assert!(!has_scope(&claims(&[], json!({"scp": {"a": 1}})), "a"));
    }

    #[test]
    fn scope_tokens_are_printable_ascii_without_space_quote_or_backslash() {
        for good in ["read:orders", "https://api.example.com/read", "a"] {
            assert!(is_scope_token(good), "{good}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
