//! Claim conditions of a route: a dotted path into the token's claims and what it must hold.
//!
//! Types are strict: a string never matches an array condition or the reverse, `3` never
//! matches `"3"` or `3.0`, and nothing is split, trimmed or case-folded.

use std::fmt;

use serde_json::Value;

use crate::token::Claims;

/// Longest claim path accepted, in segments; deeper nesting is a configuration mistake.
const MAX_DEPTH: usize = 16;

/// Registered claims that token verification already checks; a policy may not name them.
const VERIFIED_CLAIMS: [&str; 7] = ["aud", "iat", "nbf", "exp", "jti", "typ", "fam"];

/// A value a condition compares with: a string, an integer or a boolean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    /// A JSON string.
    Str(String),
    /// A JSON integer (not a float, not a numeric string).
    Int(i64),
    /// A JSON boolean.
    Bool(bool),
}

impl Scalar {
    /// Same type and same value.
    fn matches(&self, got: &Value) -> bool {
        match (self, got) {
            (Scalar::Str(want), Value::String(got)) => want == got,
            (Scalar::Int(want), Value::Number(got)) => got.as_i64() == Some(*want),
            (Scalar::Bool(want), Value::Bool(got)) => want == got,
            _ => false,
        }
    }

    fn matches_str(&self, got: &str) -> bool {
        matches!(self, Scalar::Str(want) if want == got)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// What a claim must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A scalar claim equal to this value.
    Equals(Scalar),
    /// An array claim with this value among its elements.
    Contains(Scalar),
    /// A scalar claim equal to one of these values.
    OneOf(Box<[Scalar]>),
}

/// A claim as found in a token, borrowed.
#[derive(Debug, Clone, Copy)]
enum Found<'a> {
    /// `sub` or `iss`.
    Str(&'a str),
    /// `roles`.
    Strings(&'a [String]),
    /// Any other claim, or a member of one.
    Json(&'a Value),
}

impl Condition {
    fn holds(&self, found: Found<'_>) -> bool {
        match (self, found) {
            (Condition::Equals(want), Found::Str(got)) => want.matches_str(got),
            (Condition::Equals(want), Found::Json(got)) => want.matches(got),
            (Condition::Contains(want), Found::Strings(items)) => {
                items.iter().any(|item| want.matches_str(item))
            }
            (Condition::Contains(want), Found::Json(Value::Array(items))) => {
                items.iter().any(|item| want.matches(item))
            }
            (Condition::OneOf(allowed), Found::Str(got)) => {
                allowed.iter().any(|want| want.matches_str(got))
            }
            (Condition::OneOf(allowed), Found::Json(got)) => {
                allowed.iter().any(|want| want.matches(got))
            }
            _ => false,
        }
    }

    /// Reads a condition as written in routes.toml: a bare value is equality, or a table
    /// with exactly one of `equals`, `contains`, `one_of`.
    pub fn from_toml(value: &toml::Value) -> Result<Condition, String> {
        let toml::Value::Table(table) = value else {
            return scalar(value, "").map(Condition::Equals);
        };
        let mut entries = table.iter();
        let (Some((op, operand)), None) = (entries.next(), entries.next()) else {
            return Err(format!(
                "expected exactly one operator (equals, contains or one_of), found {}",
                table.len()
            ));
        };
        match op.as_str() {
            "equals" => scalar(operand, "equals").map(Condition::Equals),
            "contains" => scalar(operand, "contains").map(Condition::Contains),
            "one_of" => one_of(operand),
            other => Err(format!(
                "unknown claim operator \"{other}\" (expected one of: equals, contains, one_of)"
            )),
        }
    }
}

/// A string, integer or boolean; `op` names the operator in errors ("" for a bare value).
fn scalar(value: &toml::Value, op: &str) -> Result<Scalar, String> {
    let what = if op.is_empty() {
        String::new()
    } else {
        format!("{op}: ")
    };
    match value {
        toml::Value::String(s) => Ok(Scalar::Str(s.clone())),
        toml::Value::Integer(i) => Ok(Scalar::Int(*i)),
        toml::Value::Boolean(b) => Ok(Scalar::Bool(*b)),
        toml::Value::Array(_) => Err(format!(
            "{what}an array is not a claim value (expected a string, integer or boolean; \
             for array claims use {{ contains = ... }}, for a list of allowed values {{ one_of = [...] }})"
        )),
        other => Err(format!(
            "{what}a {} is not a claim value (expected a string, integer or boolean)",
            other.type_str()
        )),
    }
}

fn one_of(value: &toml::Value) -> Result<Condition, String> {
    let toml::Value::Array(items) = value else {
        return Err(format!(
            "one_of: expected a list of allowed values, found a {}",
            value.type_str()
        ));
    };
    if items.is_empty() {
        return Err("one_of must list at least one value".into());
    }
    let allowed: Result<Box<[Scalar]>, String> =
        items.iter().map(|item| scalar(item, "one_of")).collect();
    allowed.map(Condition::OneOf)
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Equals(want) => write!(f, "= {want}"),
            Condition::Contains(want) => write!(f, "contains {want}"),
            Condition::OneOf(allowed) => {
                let items: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                write!(f, "one of [{}]", items.join(", "))
            }
        }
    }
}

/// Where a claim lives: `org.tenant` walks into nested objects; `[a.b]` is one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    /// As written, for `explain` and messages.
    text: Box<str>,
    segments: Box<[Box<str>]>,
}

impl ClaimPath {
    /// Parses a path: names separated by `.`; a name holding dots goes in brackets.
    pub fn parse(text: &str) -> Result<ClaimPath, String> {
        let segments = split_path(text).map_err(|why| {
            format!(
                "invalid claim path \"{text}\": {why} (expected names separated by dots, such as \
                 \"org.tenant\"; a name containing dots goes in brackets: \"[https://example.com/tenant]\")"
            )
        })?;
        if segments.len() > MAX_DEPTH {
            return Err(format!(
                "invalid claim path \"{text}\": deeper than {MAX_DEPTH} levels"
            ));
        }
        let first = &*segments[0];
        if VERIFIED_CLAIMS.contains(&first) {
            return Err(format!(
                "claim \"{first}\" is checked by token verification and cannot be a policy condition"
            ));
        }
        if matches!(first, "sub" | "iss" | "roles" | "amr" | "idp") && segments.len() > 1 {
            return Err(format!(
                "invalid claim path \"{text}\": \"{first}\" has no members"
            ));
        }
        Ok(ClaimPath {
            text: text.into(),
            segments: segments.into_boxed_slice(),
        })
    }

    /// The claim this path names in `claims`, if the token has it.
    fn lookup<'c>(&self, claims: &'c Claims) -> Option<Found<'c>> {
        let (first, rest) = self.segments.split_first()?;
        match &**first {
            "sub" => Some(Found::Str(&claims.sub)),
            "iss" => Some(Found::Str(&claims.iss)),
            "roles" => Some(Found::Strings(&claims.roles)),
            // This gateway's tokens carry them as fields; a provider's stay in `extra` too.
            "amr" if !claims.amr.is_empty() => Some(Found::Strings(&claims.amr)),
            "idp" if claims.idp.is_some() => claims.idp.as_deref().map(Found::Str),
            name => {
                let mut value = claims.extra.get(name)?;
                for segment in rest {
                    value = value.as_object()?.get(&**segment)?;
                }
                Some(Found::Json(value))
            }
        }
    }
}

/// Splits `a.b`, `[x.y].z` into names, or says what is wrong.
fn split_path(text: &str) -> Result<Vec<Box<str>>, &'static str> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let (segment, after) = if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').ok_or("unclosed '['")?;
            (&inner[..end], &inner[end + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if segment.is_empty() {
            return Err("empty name");
        }
        if segment.contains(['[', ']']) {
            return Err("'[' or ']' inside a name");
        }
        segments.push(segment.into());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(segments),
            None => return Err("expected '.' after ']'"),
        }
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One `claims` entry of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// Which claim.
    pub path: ClaimPath,
    /// What it must hold.
    pub condition: Condition,
}

impl ClaimRule {
    /// Whether the token's claims satisfy this rule; an absent claim never does.
    pub fn holds(&self, claims: &Claims) -> bool {
        self.path
            .lookup(claims)
            .is_some_and(|found| self.condition.holds(found))
    }
}

impl fmt::Display for ClaimRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.condition)
    }
}

#[cfg(test)]
mod tests;
