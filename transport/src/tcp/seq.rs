//! TCP sequence numbers: 32-bit values compared by serial-number arithmetic (RFC 1982), as
//! RFC 9293 §3.4 requires ("the comparison ... must be done modulo 2**32").

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgment) number. Ordering is RFC 1982 serial-number order, so
/// `a < b` holds when `b` is less than 2^31 ahead of `a`, across the wrap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The signed distance from `other` to `self` (positive when `self` is ahead).
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Distance ahead of `base` as a byte count. Callers use it only once they know
    /// `self >= base`; a number behind `base` saturates to 0.
    pub fn since(self, base: SeqNumber) -> usize {
        self.diff(base).max(0) as usize
    }

    /// The larger of two sequence numbers in serial-number order.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self >= other {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers in serial-number order.
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self <= other {
            self
        } else {
            other
        }
    }

    /// True when `start <= self < end` (a half-open range in sequence space).
    pub fn in_range(self, start: SeqNumber, end: SeqNumber) -> bool {
        self >= start && self < end
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // RFC 1982 §3.2 leaves numbers exactly 2^31 apart incomparable. Ordering that one
        // distance by the raw values keeps the comparison antisymmetric (never both a < b and
        // b < a, which "diff < 0" would give); TCP's windows are far smaller than 2^31.
        match self.diff(*other) {
            i32::MIN => Some(self.0.cmp(&other.0)),
            d => Some(d.cmp(&0)),
        }
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_wraps_per_rfc1982() {
        let a = SeqNumber(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(b.since(a), 20);
        assert_eq!(a.since(b), 0);
    }

    #[test]
    fn numbers_more_than_half_the_space_apart_compare_the_other_way() {
        let a = SeqNumber(0);
        let b = SeqNumber(0x8000_0001);
        assert!(b < a);
    }

    #[test]
    fn numbers_half_the_space_apart_are_ordered_one_way_only() {
        let a = SeqNumber(5);
        let b = SeqNumber(5 + 0x8000_0000);
        assert_eq!(a.partial_cmp(&b), Some(Ordering::Less));
        assert_eq!(b.partial_cmp(&a), Some(Ordering::Greater), "not also b < a");
        assert_eq!((b.max(a), a.max(b)), (b, b));
        assert_eq!((b.min(a), a.min(b)), (a, a));
    }

    #[test]
    fn min_max_and_range_follow_serial_order() {
        let a = SeqNumber(u32::MAX);
        let b = a + 1;
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!(a.in_range(a, b));
        assert!(!b.in_range(a, b));
        assert_eq!(b - 1, a);
    }
}
