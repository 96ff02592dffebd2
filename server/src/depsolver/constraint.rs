//! Cookbook versions and the constraints on them, as Chef's dependency solver reads them:
//! `x`, `x.y` or `x.y.z` (`x.y` is `x.y.0`), and `=`, `>`, `>=`, `<`, `<=`, `~>` before a version,
//! or a bare version meaning `=`.

use std::fmt;

/// `major.minor.patch`; compared as integers, so datestamp patches (`1.2.20130730201745`)
/// order correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// `x`, `x.y` or `x.y.z` of decimal integers; the flag says whether parts were left out.
    pub fn parse(text: &str) -> Option<(Version, bool)> {
        let parts: Vec<&str> = text.split('.').collect();
        if !(1..=3).contains(&parts.len()) {
            return None;
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        Some((Version(numbers[0], numbers[1], numbers[2]), parts.len() < 3))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The comparison of a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
    /// `~>`: with `x.y` any `x.*` at or above it, with `x.y.z` any `x.y.*` at or above it.
    Pessimistic {
        two_parts: bool,
    },
}

/// One constraint on a cookbook's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Constraint {
    pub op: Op,
    pub version: Version,
}

impl Constraint {
    /// `>= 0.0.0`: what a cookbook named without a version asks for.
    pub const ANY: Constraint = Constraint {
        op: Op::Ge,
        version: Version(0, 0, 0),
    };

    /// `= V`: a run-list item pinned with `@V`.
    pub fn exactly(version: Version) -> Constraint {
        Constraint {
            op: Op::Eq,
            version,
        }
    }

    /// A constraint as environments and cookbook metadata write it.
    pub fn parse(text: &str) -> Option<Constraint> {
        let text = text.trim();
        let (op, rest) = [
            ("~>", Op::Pessimistic { two_parts: false }),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .into_iter()
        .find_map(|(prefix, op)| text.strip_prefix(prefix).map(|rest| (op, rest)))
        .unwrap_or((Op::Eq, text));
        let (version, two_parts) = Version::parse(rest.trim_start())?;
        let op = match op {
            Op::Pessimistic { .. } => Op::Pessimistic { two_parts },
            other => other,
        };
        Some(Constraint { op, version })
    }

    /// Whether `v` satisfies this constraint.
    pub fn matches(&self, v: Version) -> bool {
        let c = self.version;
        match self.op {
            Op::Eq => v == c,
            Op::Gt => v > c,
            Op::Ge => v >= c,
            Op::Lt => v < c,
            Op::Le => v <= c,
            Op::Pessimistic { two_parts: true } => v.0 == c.0 && v >= c,
            Op::Pessimistic { two_parts: false } => v.0 == c.0 && v.1 == c.1 && v >= c,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Pessimistic { .. } => "~>",
        };
        write!(f, "{op} {}", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text)
            .map(|(v, _)| v)
            .unwrap_or(Version(999, 0, 0))
    }

    fn ok(constraint: &str, version: &str) -> bool {
        Constraint::parse(constraint).is_some_and(|c| c.matches(v(version)))
    }

    #[test]
    fn versions_compare_as_integers() {
        assert!(v("1.10.0") > v("1.9.9"));
        assert_eq!(v("1.2"), v("1.2.0"));
        assert!(v("1.2.20130730201745") > v("1.2.20130730200000"));
        assert_eq!(v("7"), v("7.0.0"));
        for bad in [
            "1.2.3.4",
            "1..2",
            "a.b",
            "1.2.x",
            "",
            "1.2.99999999999999999999",
        ] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn operators() {
        assert!(ok("= 1.0.0", "1.0.0") && !ok("= 1.0.0", "1.0.1"));
        assert!(ok("1.0", "1.0.0"));
        assert!(ok("> 1.0.0", "1.0.1") && !ok("> 1.0.0", "1.0.0"));
        assert!(ok(">= 1.0.0", "1.0.0") && !ok(">= 1.0.0", "0.9.9"));
        assert!(ok("< 2.0", "1.99.99") && !ok("< 2.0", "2.0.0"));
        assert!(ok("<= 2.0", "2.0.0") && !ok("<= 2.0", "2.0.1"));
    }

    #[test]
    fn pessimistic_follows_the_number_of_parts() {
        assert!(ok("~> 2.1", "2.2.0") && ok("~> 2.1", "2.1.0") && !ok("~> 2.1", "3.0.0"));
        assert!(!ok("~> 2.1", "2.0.9"));
        assert!(ok("~> 2.1.1", "2.1.5") && !ok("~> 2.1.1", "2.2.0") && !ok("~> 2.1.1", "2.1.0"));
        assert!(ok("~> 5", "5.9.0") && !ok("~> 5", "6.0.0") && !ok("~> 5", "4.9.9"));
    }

    #[test]
    fn printed_with_three_parts() {
        let c = Constraint::parse("~> 1.2").map(|c| c.to_string());
        assert_eq!(c.as_deref(), Some("~> 1.2.0"));
        assert_eq!(Constraint::ANY.to_string(), ">= 0.0.0");
        assert!(Constraint::parse("=> 1.0").is_none());
        // erchef takes a one-part version as x.0.0.
        let c = Constraint::parse("= 1").map(|c| c.to_string());
        assert_eq!(c.as_deref(), Some("= 1.0.0"));
    }
}
