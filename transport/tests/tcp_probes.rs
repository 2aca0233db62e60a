//! Probes to a silent peer: zero-window probes that give up (RFC 9293 §3.8.6.1, RFC 1122
//! §4.2.2.17, RFC 5482) and keepalives (RFC 1122 §4.2.3.6) that give the peer a whole interval
//! to answer. The helpers are `netstack_transport::tcp::testing`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netstack_transport::tcp::connection::{Connection, State};
use netstack_transport::tcp::testing::*;
use netstack_transport::tcp::{
    Endpoint, Flags, FourTuple, SocketOptions, TcpConfig, TcpError, TcpRepr,
};

/// RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17 allow probing a zero window forever only while the
/// peer answers; the issue asks that no timer rearm forever. With the peer gone, the user
/// timeout (RFC 5482) runs from the first unanswered probe, as it does for unacknowledged data.
#[test]
fn unanswered_zero_window_probes_end_the_connection() {
    let opts = SocketOptions {
        user_timeout: Some(Duration::from_secs(60)),
        ..SocketOptions::default()
    };
    let (end, probes) = probe_a_vanished_peer(blocked_by_a_zero_window(opts));
    assert!(probes > 0);
    assert!(end <= ms(61_000), "the user timeout ran out at {end:?}");
}

/// A connection with data waiting behind a zero window from 30 ms on.
fn blocked_by_a_zero_window(opts: SocketOptions) -> Connection {
    let mut c = established_with(opts, PLAIN).0;
    c.send(&[1; 100]).unwrap();
    drain(&mut c, ms(20));
    let mut zero = peer_ack(c.snd_nxt());
    zero.window = 0;
    c.on_segment(ms(30), &zero, &[]);
    c.send(&[2; 100]).unwrap();
    drain(&mut c, ms(30));
    c
}

/// Runs the timers of a connection whose peer has vanished, for at most a virtual day; asserts
/// it timed out and returns when, and how many segments it sent.
fn probe_a_vanished_peer(mut c: Connection) -> (Instant, usize) {
    let mut now = ms(30);
    let mut probes = 0;
    while c.state() != State::Closed && now < ms(86_400_000) {
        let Some(d) = c.poll_deadline() else { break };
        now = d;
        c.on_timeout(now);
        probes += drain(&mut c, now).len();
    }
    assert_eq!(
        c.error(),
        Some(TcpError::TimedOut),
        "still {:?} after {probes} unanswered probes",
        c.state()
    );
    (now, probes)
}

/// RFC 1122 §4.2.2.17: without a user timeout, unanswered zero-window probes are bounded by the
/// retry limit (`max_retries`, Linux's tcp_retries2), after which the connection times out.
#[test]
fn zero_window_probes_give_up_after_the_retry_limit() {
    let c = blocked_by_a_zero_window(SocketOptions::default());
    let (end, probes) = probe_a_vanished_peer(c);
    assert_eq!(probes, config().max_retries as usize);
    assert!(end < ms(3_600_000), "gave up only after {end:?}");
}

/// RFC 1122 §4.2.3.6 / RFC 9293 §3.8.4: keepalive probes are spaced by the interval so the
/// peer can answer. When the timer is serviced late (a stalled worker, a suspended host, or
/// keepalive switched on with `set_options` on a connection already idle), the connection sends
/// a probe and waits, rather than ending at once with TimedOut (deadlines anchored at the last
/// segment received were all already past). Linux sends one probe and waits the interval.
#[test]
fn keepalive_gives_the_peer_an_interval_to_answer_after_a_late_timer() {
    use netstack_transport::tcp::testing::pump;
    use netstack_transport::tcp::{Keepalive, TcpEvent};
    let a_ip = Ipv4Addr::new(192, 0, 2, 1);
    let b_ip = Ipv4Addr::new(192, 0, 2, 2);
    let mut a = Endpoint::new(TcpConfig::default(), [1; 16]);
    let mut b = Endpoint::new(TcpConfig::default(), [2; 16]);
    b.listen(SocketAddrV4::new(b_ip, 80), 8, SocketOptions::default())
        .unwrap();
    let ka = SocketOptions {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            count: 3,
        }),
        ..SocketOptions::default()
    };
    let tuple = FourTuple {
        local: SocketAddrV4::new(a_ip, 4000),
        remote: SocketAddrV4::new(b_ip, 80),
    };
    let id = a.connect(t0(), tuple, ka).unwrap();
    pump(&mut a, &mut b, t0());
    assert!(std::iter::from_fn(|| b.poll_event()).any(|e| matches!(e, TcpEvent::Accepted { .. })));
    // The worker is serviced again only after a minute (host suspended, worker stalled).
    let late = t0() + Duration::from_secs(60);
    a.on_timeout(late);
    let mut out = Vec::new();
    a.poll_transmit(late, &mut out);
    assert_eq!(
        a.state(id),
        Some(State::Established),
        "keepalive gave up at one instant after sending {} segment(s)",
        out.len()
    );
}

/// RFC 1122 §4.2.3.6, at the level of one connection: after a late timer the worker services
/// every deadline that is due, yet only one probe goes out and the next waits a whole interval;
/// after `count` unanswered probes, each an interval apart, the connection ends with a RST.
#[test]
fn keepalive_probes_are_an_interval_apart_even_after_a_late_timer() {
    use netstack_transport::tcp::Keepalive;
    let interval = Duration::from_secs(2);
    let opts = SocketOptions {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval,
            count: 3,
        }),
        ..SocketOptions::default()
    };
    let mut c = established_with(opts, PLAIN).0;
    let late = ms(60_000);
    let mut probes = 0;
    while c.poll_deadline().is_some_and(|d| d <= late) {
        c.on_timeout(late);
        probes += drain(&mut c, late).len();
        assert!(probes < 10, "the keepalive timer re-arms at once");
    }
    assert_eq!((c.state(), probes), (State::Established, 1));
    for k in 1..3 {
        let d = c.poll_deadline().unwrap();
        assert_eq!(d, late + interval * k);
        c.on_timeout(d);
        let out = drain(&mut c, d);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.seq, c.snd_una() - 1, "a probe below SND.UNA");
    }
    let d = c.poll_deadline().unwrap();
    assert_eq!(d, late + interval * 3);
    c.on_timeout(d);
    assert_eq!(c.error(), Some(TcpError::TimedOut));
    let out = drain(&mut c, d);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].0.flags,
        Flags::RST | Flags::ACK,
        "a RST tells the peer"
    );
}

/// RFC 1122 §4.2.3.6 with RFC 9293 §3.10.7.4: only an acceptable segment shows the peer is
/// alive. An old segment outside the window draws an ACK but does not restart the idle time.
#[test]
fn unacceptable_segment_does_not_restart_the_keepalive_idle_time() {
    use netstack_transport::tcp::Keepalive;
    let opts = SocketOptions {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            count: 3,
        }),
        ..SocketOptions::default()
    };
    let mut c = established_with(opts, PLAIN).0;
    let first = c.poll_deadline().unwrap();
    assert_eq!(first, ms(10) + Duration::from_secs(10));
    let old = TcpRepr {
        payload_len: 10,
        ..peer(Flags::ACK, PEER_ISS.wrapping_sub(100_000), c.snd_nxt())
    };
    c.on_segment(ms(5_000), &old, &[0; 10]);
    assert_eq!(
        drain(&mut c, ms(5_000)).len(),
        1,
        "an unacceptable segment draws an ACK"
    );
    assert_eq!(c.poll_deadline(), Some(first));
    // An acceptable one does restart it.
    c.on_segment(ms(6_000), &peer_ack(c.snd_nxt()), &[]);
    assert_eq!(c.poll_deadline(), Some(ms(16_000)));
}
