//! The segment trie behind `Table::find`: lookup walks the path once per candidate branch,
//! so its cost depends on path depth and pattern shape, never on the number of rules.

use std::collections::HashMap;

use super::pattern::{Pattern, Segment};

/// One trie node: the rules reachable after the segments on the way here.
#[derive(Debug)]
pub(super) struct Node {
    literals: HashMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    /// Rules whose pattern ends exactly here, ascending (inserted in file order).
    exact: Vec<usize>,
    /// Rules with a `**` here, ascending.
    rest: Vec<usize>,
    /// Lowest rule index anywhere below, so a walk can skip subtrees that cannot win.
    first: usize,
}

impl Node {
    /// An empty node.
    pub(super) fn new() -> Node {
        Node {
            literals: HashMap::new(),
            star: None,
            exact: Vec::new(),
            rest: Vec::new(),
            first: usize::MAX,
        }
    }

    /// Adds rule `index`; callers insert in ascending index order to keep the lists sorted.
    pub(super) fn insert(&mut self, pattern: &Pattern, index: usize) {
        let mut node = self;
        node.first = node.first.min(index);
        for segment in pattern.segments() {
            node = match segment {
                Segment::Literal(s) => node.literals.entry(s.clone()).or_insert_with(Node::new),
                Segment::Star => node.star.get_or_insert_with(|| Box::new(Node::new())),
            };
            node.first = node.first.min(index);
        }
        if pattern.has_rest() {
            node.rest.push(index);
        } else {
            node.exact.push(index);
        }
    }

    /// Lowers `best` to the lowest rule index matching `path` that `accepts` allows.
    ///
    /// Recursion depth is bounded by the deepest pattern, not by the request path: the walk
    /// stops as soon as no child matches the next segment.
    pub(super) fn find<F: Fn(usize) -> bool>(&self, path: &str, accepts: &F, best: &mut usize) {
        if self.first >= *best {
            return;
        }
        consider(&self.rest, accepts, best);
        match next_segment(path) {
            None => consider(&self.exact, accepts, best),
            Some((segment, remaining)) => {
                if let Some(child) = self.literals.get(segment) {
                    child.find(remaining, accepts, best);
                }
                if let Some(child) = &self.star {
                    child.find(remaining, accepts, best);
                }
            }
        }
    }
}

/// Takes the first accepted index below `best` from an ascending list.
fn consider<F: Fn(usize) -> bool>(indices: &[usize], accepts: &F, best: &mut usize) {
    for &index in indices {
        if index >= *best {
            return;
        }
        if accepts(index) {
            *best = index;
            return;
        }
    }
}

/// Splits off the next non-empty segment, so "/a//b/" and "/a/b" walk the same way.
fn next_segment(path: &str) -> Option<(&str, &str)> {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return None;
    }
    Some(path.split_once('/').unwrap_or((path, "")))
}
