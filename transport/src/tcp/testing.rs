//! Helpers for tests and examples that join endpoints directly, without a link.

use std::time::Instant;

use super::Endpoint;

/// Delivers everything between two endpoints over a perfect, instant wire until both are
/// quiet. Panics after 1,000 rounds: two endpoints that never go quiet are a bug.
pub fn pump(a: &mut Endpoint, b: &mut Endpoint, now: Instant) {
    for _ in 0..1000 {
        let (mut wa, mut wb) = (Vec::new(), Vec::new());
        a.poll_transmit(now, &mut wa);
        b.poll_transmit(now, &mut wb);
        if wa.is_empty() && wb.is_empty() {
            return;
        }
        for (s, d, seg) in wa {
            b.on_segment(now, s, d, &seg);
        }
        for (s, d, seg) in wb {
            a.on_segment(now, s, d, &seg);
        }
    }
    panic!("endpoints never went quiet");
}
