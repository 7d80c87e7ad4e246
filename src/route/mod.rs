//! The compiled route table: which rule, in file order, a normalized request belongs to.
//!
//! Rules are bucketed by host and stored in segment tries, so `find` costs the same with ten
//! rules or ten thousand, while still returning the first match in file order (the lowest rule
//! index among all candidates), which is what operators audit the route file against.

mod host;
mod pattern;
mod trie;

use std::borrow::Cow;
use std::collections::HashMap;

use http::Method;

pub use host::is_valid_authority;
pub use pattern::{Pattern, PatternError};
use trie::Node;

/// What a rule matches: an optional host, a path pattern and an optional method list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Host name, lowercase and without port; None matches any host.
    pub host: Option<String>,
    /// Path pattern, matched against the normalized path.
    pub pattern: Pattern,
    /// Allowed methods; None allows any.
    pub methods: Option<Vec<Method>>,
}

impl Matcher {
    /// True when every request `later` matches is matched by `self`, so `later` never wins.
    pub fn shadows(&self, later: &Matcher) -> bool {
        let host = match (&self.host, &later.host) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine.eq_ignore_ascii_case(theirs),
            (Some(_), None) => false,
        };
        let methods = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => theirs.iter().all(|m| mine.contains(m)),
            (Some(_), None) => false,
        };
        host && methods && self.pattern.covers(&later.pattern)
    }

    /// True when the rule allows `method`.
    fn allows(&self, method: &Method) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.contains(method))
    }
}

/// Rules in file order, compiled into per-host tries for lookup.
#[derive(Debug)]
pub struct Table<T> {
    rules: Vec<(Matcher, T)>,
    by_host: HashMap<Box<str>, Node>,
    any_host: Node,
}

impl<T> Table<T> {
    /// Compiles rules; a rule's index is its position in `rules`, i.e. its order in the file.
    pub fn new(rules: Vec<(Matcher, T)>) -> Table<T> {
        let mut by_host: HashMap<Box<str>, Node> = HashMap::new();
        let mut any_host = Node::new();
        for (index, (matcher, _)) in rules.iter().enumerate() {
            let trie = match &matcher.host {
                Some(h) => by_host.entry(host::rule_key(h)).or_insert_with(Node::new),
                None => &mut any_host,
            };
            trie.insert(&matcher.pattern, index);
        }
        Table {
            rules,
            by_host,
            any_host,
        }
    }

    /// First rule in file order matching a request, with its index.
    ///
    /// `host` is the raw Host value (any case, optional port) or None; `path` must already be
    /// normalized by `path::normalize`. Does not allocate.
    pub fn find(&self, host: Option<&str>, method: &Method, path: &str) -> Option<(usize, &T)> {
        let allows = |index: usize| self.rules.get(index).is_some_and(|(m, _)| m.allows(method));
        let mut best = usize::MAX;
        let mut buf = [0u8; host::MAX_LEN];
        if let Some(trie) = host
            .and_then(|raw| host::key(raw, &mut buf))
            .and_then(|key| self.by_host.get(key))
        {
            trie.find(path, &allows, &mut best);
        }
        self.any_host.find(path, &allows, &mut best);
        self.rules.get(best).map(|(_, value)| (best, value))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the table has no rules (every request is a 404).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The value of rule `index`.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.rules.get(index).map(|(_, value)| value)
    }

    /// Every rule's value, in file order, to carry state over on reload.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.rules.iter_mut().map(|(_, value)| value)
    }

    /// The matcher of rule `index`, for `check` and `explain` output.
    pub fn matcher(&self, index: usize) -> Option<&Matcher> {
        self.rules.get(index).map(|(matcher, _)| matcher)
    }
}

/// Removes `prefix` from `path` at a segment boundary; the result always starts with '/'.
///
/// "/admin" turns "/admin/x" into "/x" and "/admin" into "/", and leaves "/adminx" alone.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Cow<'a, str> {
    let prefix = prefix.trim_end_matches('/');
    let stripped = match path.strip_prefix(prefix) {
        Some("") => Some("/"),
        Some(rest) if rest.starts_with('/') => Some(rest),
        _ => None,
    };
    match stripped {
        Some(rest) => Cow::Borrowed(rest),
        None if path.starts_with('/') => Cow::Borrowed(path),
        None => Cow::Owned(format!("/{path}")),
    }
}

#[cfg(test)]
mod tests;
