//! Route path patterns: literal segments, `*` for one segment, a trailing `**` for any rest.

use crate::path::{self, PathError};

/// Why a path pattern in the route file was rejected; each message says what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern does not start with '/'.
    #[error("expected a path starting with '/'")]
    NotAbsolute,
    /// The pattern carries a query or fragment, which routing never sees.
    #[error("'?' and '#' are not allowed")]
    QueryOrFragment,
    /// `**` somewhere other than the end.
    #[error("'**' is only allowed as the last segment")]
    DoubleStarNotLast,
    /// `*` mixed with other characters in one segment, such as "/a*" or "/***".
    #[error("'*' must be a whole segment")]
    PartialStar,
    /// The pattern would change under `path::normalize`, so no normalized request could match it.
    #[error(
        "path pattern must be normalized (no '.', '..', '//', encoded unreserved chars, \
         lowercase escapes)"
    )]
    NotNormalized,
    /// The pattern is a path the normalizer refuses outright.
    #[error("path pattern is not a valid path: {0}")]
    BadPath(PathError),
}

/// One parsed segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// Matches exactly these bytes.
    Literal(Box<str>),
    /// Matches any single non-empty segment.
    Star,
}

/// A parsed path pattern such as "/api/*/items" or "/public/**".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: Box<str>,
    segments: Vec<Segment>,
    rest: bool,
}

impl Pattern {
    /// Parses a pattern from the route file, accepting only normalized paths.
    pub fn parse(s: &str) -> Result<Pattern, PatternError> {
        if !s.starts_with('/') {
            return Err(PatternError::NotAbsolute);
        }
        if s.contains(['?', '#']) {
            return Err(PatternError::QueryOrFragment);
        }
        // A literal that normalization would rewrite can never equal a normalized request path,
        // so such a rule would silently never match; refuse it at load instead.
        match path::normalize(s) {
            Ok(normal) if normal == s => {}
            Ok(_) => return Err(PatternError::NotNormalized),
            Err(e) => return Err(PatternError::BadPath(e)),
        }
        let mut segments = Vec::new();
        let mut rest = false;
        for part in s.split('/').filter(|p| !p.is_empty()) {
            if rest {
                return Err(PatternError::DoubleStarNotLast);
            }
            match part {
                "**" => rest = true,
                "*" => segments.push(Segment::Star),
                _ if part.contains('*') => return Err(PatternError::PartialStar),
                _ => segments.push(Segment::Literal(part.into())),
            }
        }
        Ok(Pattern {
            source: s.into(),
            segments,
            rest,
        })
    }

    /// True when every path `other` matches is also matched by `self`.
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut theirs = other.segments.iter();
        for mine in &self.segments {
            // `other` may stop here (end of path, or an empty `**` tail); `self` needs more.
            let Some(their) = theirs.next() else {
                return false;
            };
            let covered = match (mine, their) {
                (Segment::Star, _) => true,
                (Segment::Literal(a), Segment::Literal(b)) => a == b,
                (Segment::Literal(_), Segment::Star) => false,
            };
            if !covered {
                return false;
            }
        }
        // Whatever `other` has left is covered only by a `**` of ours.
        self.rest || (theirs.next().is_none() && !other.rest)
    }

    /// The pattern as written in the route file.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The segments before any trailing `**`.
    pub(super) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True when the pattern ends in `**`.
    pub(super) fn has_rest(&self) -> bool {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a pattern the test knows to be valid.
    fn p(s: &str) -> Pattern {
        match Pattern::parse(s) {
            Ok(pattern) => pattern,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn relative_pattern_is_rejected() {
        assert_eq!(Pattern::parse("admin/**"), Err(PatternError::NotAbsolute));
        assert_eq!(Pattern::parse(""), Err(PatternError::NotAbsolute));
    }

    #[test]
    fn double_star_in_the_middle_is_rejected() {
        assert_eq!(
            Pattern::parse("/a/**/b"),
            Err(PatternError::DoubleStarNotLast)
        );
        assert_eq!(
            Pattern::parse("/**/**"),
            Err(PatternError::DoubleStarNotLast)
        );
    }

    #[test]
    fn partial_star_segment_is_rejected() {
        assert_eq!(Pattern::parse("/a*"), Err(PatternError::PartialStar));
        assert_eq!(Pattern::parse("/a/***"), Err(PatternError::PartialStar));
        assert_eq!(Pattern::parse("/*.js"), Err(PatternError::PartialStar));
    }

    #[test]
    fn unnormalized_pattern_is_rejected() {
        for s in ["/a/../b", "/a/./b", "//a", "/%61dmin", "/a%3a", "/a/.."] {
            assert_eq!(Pattern::parse(s), Err(PatternError::NotNormalized), "{s}");
        }
    }

    #[test]
    fn pattern_the_normalizer_refuses_is_rejected_with_its_reason() {
        assert_eq!(
            Pattern::parse("/a%2Fb"),
            Err(PatternError::BadPath(PathError::EncodedSlash))
        );
        assert_eq!(
            Pattern::parse("/.."),
            Err(PatternError::BadPath(PathError::AboveRoot))
        );
    }

    #[test]
    fn query_and_fragment_are_rejected() {
        assert_eq!(Pattern::parse("/a?b=1"), Err(PatternError::QueryOrFragment));
        assert_eq!(Pattern::parse("/a#top"), Err(PatternError::QueryOrFragment));
    }

    #[test]
    fn error_messages_say_what_was_expected() {
        assert_eq!(
            PatternError::NotAbsolute.to_string(),
            "expected a path starting with '/'"
        );
        assert_eq!(
            PatternError::PartialStar.to_string(),
            "'*' must be a whole segment"
        );
    }

    #[test]
    fn parse_keeps_the_source_text() {
        assert_eq!(p("/api/*/items/").as_str(), "/api/*/items/");
        assert_eq!(p("/").segments(), &[]);
        assert!(p("/**").has_rest());
    }

    #[test]
    fn double_star_covers_everything() {
        for other in ["/", "/**", "/a", "/a/*/c", "/*/**"] {
            assert!(p("/**").covers(&p(other)), "{other}");
        }
    }

    #[test]
    fn star_covers_a_literal_of_the_same_depth_only() {
        assert!(p("/a/*").covers(&p("/a/b")));
        assert!(!p("/a/*").covers(&p("/a/b/c")));
        assert!(!p("/a/*").covers(&p("/a")));
        assert!(!p("/a/*").covers(&p("/a/**")));
    }

    #[test]
    fn literal_does_not_cover_a_star() {
        assert!(!p("/a/b").covers(&p("/a/*")));
        assert!(p("/a/*").covers(&p("/a/*")));
    }

    #[test]
    fn prefix_rest_covers_anything_below_it() {
        assert!(p("/a/**").covers(&p("/a/*/c")));
        assert!(p("/a/**").covers(&p("/a")));
        assert!(p("/a/**").covers(&p("/a/b/**")));
        assert!(!p("/a/**").covers(&p("/b/c")));
        assert!(!p("/a/b/**").covers(&p("/a/**")));
    }

    #[test]
    fn root_covers_only_root() {
        assert!(p("/").covers(&p("/")));
        assert!(!p("/").covers(&p("/**")));
        assert!(!p("/").covers(&p("/a")));
    }

    #[test]
    fn trailing_slash_in_pattern_is_the_same_path() {
        assert!(p("/admin/").covers(&p("/admin")));
        assert!(p("/admin").covers(&p("/admin/")));
    }
}
