//! Cookbook version numbers: 1 to 3 dot-separated non-negative integers, each fitting in a
//! signed 64-bit integer (erchef stores them as three BIGINT columns).

use std::fmt;
use std::str::FromStr;

use super::PathError;

/// A cookbook version, normalised to three parts (`1.2` is `1.2.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CookbookVersionNumber {
    /// Major part.
    pub major: i64,
    /// Minor part.
    pub minor: i64,
    /// Patch part.
    pub patch: i64,
}

impl CookbookVersionNumber {
    /// Builds a version from its parts.
    pub fn new(major: i64, minor: i64, patch: i64) -> Self {
        CookbookVersionNumber {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for CookbookVersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for CookbookVersionNumber {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| PathError::InvalidVersion {
            version: s.to_owned(),
            reason,
        };
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() > 3 {
            return Err(invalid("at most three dot-separated parts are allowed"));
        }
        let mut nums = [0i64; 3];
        for (slot, part) in nums.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("each part must be a non-negative integer"));
            }
            *slot = part
                .parse()
                .map_err(|_| invalid("each part must be at most 9223372036854775807"))?;
        }
        Ok(CookbookVersionNumber::new(nums[0], nums[1], nums[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_to_three_parts() {
        assert_eq!(
            "1".parse::<CookbookVersionNumber>().unwrap(),
            CookbookVersionNumber::new(1, 0, 0)
        );
        assert_eq!(
            "1.2".parse::<CookbookVersionNumber>().unwrap(),
            CookbookVersionNumber::new(1, 2, 0)
        );
        assert_eq!(
            "9223372036854775807.0.1"
                .parse::<CookbookVersionNumber>()
                .unwrap(),
            CookbookVersionNumber::new(i64::MAX, 0, 1)
        );
    }

    #[test]
    fn orders_numerically() {
        let a: CookbookVersionNumber = "1.10.0".parse().unwrap();
        let b: CookbookVersionNumber = "1.9.9".parse().unwrap();
        assert!(a > b);
    }

    #[test]
    fn rejects_bad_versions() {
        for bad in [
            "",
            "1.",
            ".1",
            "1..2",
            "1.2.3.4",
            "-1",
            "+1",
            "1.a",
            "1 ",
            "9223372036854775808",
            "_latest",
        ] {
            assert!(bad.parse::<CookbookVersionNumber>().is_err(), "{bad:?}");
        }
    }
}
