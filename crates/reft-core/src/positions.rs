//! Intervention positions: pyreft's `fN+lM` position spec and `get_intervention_locations`
//! (capping at half the prompt, pad values, tied vs untied split), as pure functions.

use crate::error::{ReftError, Result};

/// First-`first` and last-`last` prompt tokens (pyreft's `"f{first}+l{last}"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions {
    pub first: usize,
    pub last: usize,
}

impl Positions {
    /// Parses `"f7+l7"`, `"f3"` or `"l1"`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || ReftError::config("positions", format!("`{s}` is not of the form fN+lM, fN or lM"));
        let (mut first, mut last) = (None, None);
        for part in s.split('+') {
            let part = part.trim();
            let n = |p: &str| p[1..].parse::<usize>().map_err(|_| bad());
            match part.chars().next() {
                Some('f') if first.is_none() => first = Some(n(part)?),
                Some('l') if last.is_none() => last = Some(n(part)?),
                _ => return Err(bad()),
            }
        }
        if first.is_none() && last.is_none() {
            return Err(bad());
        }
        Ok(Self { first: first.unwrap_or(0), last: last.unwrap_or(0) })
    }
}

/// Where pad entries point: the prepended sink (`First`, value −1 before the +1 shift) or the
/// appended one (`Last`, value `last_position`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    First,
    Last,
}

/// pyreft's `get_intervention_locations`: one position list per intervention, relative to the
/// unpadded sequence whose prompt ends (exclusive) at `last_position`.
pub fn intervention_locations(
    last_position: usize,
    pos: Positions,
    num_interventions: usize,
    share_weights: bool,
    pad_mode: PadMode,
) -> Vec<Vec<i64>> {
    let f = (last_position / 2).min(pos.first);
    let s = (last_position / 2).min(pos.last);
    let pad = match pad_mode {
        PadMode::First => -1,
        PadMode::Last => last_position as i64,
    };
    let prefix: Vec<i64> = (0..f as i64).collect();
    let suffix: Vec<i64> = ((last_position - s) as i64..last_position as i64).collect();
    let pads = |n: usize| std::iter::repeat(pad).take(n);
    if share_weights || pos.first == 0 || pos.last == 0 {
        let mut all = prefix;
        all.extend(suffix);
        all.extend(pads((pos.first - f) + (pos.last - s)));
        return vec![all; num_interventions];
    }
    let mut left = prefix;
    left.extend(pads(pos.first - f));
    let mut right = suffix;
    right.extend(pads(pos.last - s));
    let len = left.len().max(right.len());
    left.resize(len, pad);
    right.resize(len, pad);
    let half = num_interventions / 2;
    (0..num_interventions).map(|i| if i < half { left.clone() } else { right.clone() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The table of REFERENCE.md §3.6, verified there against pyreft.
    #[test]
    fn matches_pyreft_table() {
        let p = |s: &str| Positions::parse(s).unwrap();
        assert_eq!(intervention_locations(20, p("f3+l3"), 2, true, PadMode::First), vec![vec![0, 1, 2, 17, 18, 19]; 2]);
        assert_eq!(
            intervention_locations(20, p("f3+l3"), 4, false, PadMode::First),
            vec![vec![0, 1, 2], vec![0, 1, 2], vec![17, 18, 19], vec![17, 18, 19]]
        );
        assert_eq!(intervention_locations(5, p("f3+l3"), 2, false, PadMode::First), vec![vec![0, 1, -1], vec![3, 4, -1]]);
        assert_eq!(intervention_locations(5, p("f3+l3"), 2, false, PadMode::Last), vec![vec![0, 1, 5], vec![3, 4, 5]]);
        assert_eq!(intervention_locations(5, p("f3+l3"), 1, true, PadMode::First), vec![vec![0, 1, 3, 4, -1, -1]]);
        assert_eq!(intervention_locations(20, p("f2"), 3, false, PadMode::First), vec![vec![0, 1]; 3]);
        assert_eq!(intervention_locations(20, p("l1"), 1, false, PadMode::First), vec![vec![19]]);
    }

    #[test]
    fn parse_rejects_garbage() {
        for s in ["", "x3", "f", "f3+f4", "f-1", "l2+q"] {
            assert!(Positions::parse(s).is_err(), "{s}");
        }
        assert_eq!(Positions::parse("f7+l7").unwrap(), Positions { first: 7, last: 7 });
    }
}
