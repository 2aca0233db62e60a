//! Counters. Every drop has a cause-named counter; `add` sums workers' stats.

use netstack_network::counters;

counters! {
    /// Per-connection counters, plus gauges (`srtt_us` … `snd_wnd`) sampled when read.
    pub struct ConnStats {
        segments_sent, segments_received, bytes_sent, bytes_acked, bytes_received,
        /// Segments sent again (any cause).
        retransmissions,
        retransmitted_bytes,
        fast_recoveries,
        /// RFC 6675 §4 NextSeg rule 4: one per recovery at most.
        rescue_retransmissions,
        rto_expiries,
        sack_blocks_received,
        dsack_blocks_received,
        dsack_blocks_sent,
        dup_acks,
        ooo_segments,
        ooo_bytes,
        /// Out-of-order segments dropped because the range table was full.
        ooo_dropped,
        /// Segments outside the receive window (answered with an ACK).
        unacceptable_segments,
        /// ACKs for empty unacceptable or PAWS-failing segments left out by the rate limit.
        invalid_acks_suppressed,
        challenge_acks,
        challenge_acks_suppressed,
        /// RSTs a connection could not queue (more than 4 waiting for `poll_transmit`).
        ctl_replies_dropped,
        paws_drops,
        zero_window_probes,
        keepalive_probes,
        /// RFC 8985 tail loss probes sent.
        tail_loss_probes,
        window_updates,
        srtt_us, rttvar_us, rto_us, cwnd, ssthresh, snd_wnd, rcv_wnd,
    }
}

/// Endpoint counters plus the connection counters summed over live and closed connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    pub endpoint: EndpointCounters,
    pub connections: ConnStats,
}

impl TcpStats {
    /// Calls `f` with every counter's name (`endpoint.…`, `connections.…`) and value.
    pub fn for_each(&self, f: &mut dyn FnMut(&str, u64)) {
        self.endpoint
            .for_each(&mut |n, v| f(&format!("endpoint.{n}"), v));
        self.connections
            .for_each(&mut |n, v| f(&format!("connections.{n}"), v));
    }
}

impl TcpStats {
    /// Adds another worker's stats into these.
    pub fn add(&mut self, other: &TcpStats) {
        self.endpoint.add(&other.endpoint);
        self.connections.add(&other.connections);
    }
}

impl ConnStats {
    /// The counters alone, without the per-connection gauges (which do not sum).
    pub fn counters_only(&self) -> ConnStats {
        ConnStats {
            srtt_us: 0,
            rttvar_us: 0,
            rto_us: 0,
            cwnd: 0,
            ssthresh: 0,
            snd_wnd: 0,
            rcv_wnd: 0,
            ..*self
        }
    }
}

counters! {
    /// Endpoint counters (one worker).
    pub struct EndpointCounters {
        segments_received,
        segments_sent,
        dropped_too_short,
        dropped_bad_data_offset,
        dropped_bad_checksum,
        dropped_bad_option,
        dropped_zero_port,
        /// Segments for no connection and no listener, answered with RST (RFC 9293 §3.10.7.1).
        rst_sent_no_socket,
        /// RSTs to no connection (never answered).
        rst_ignored_no_socket,
        /// Segments to a listener with neither SYN, ACK nor RST, dropped (RFC 9293 §3.10.7.2).
        dropped_listen_no_syn_or_ack,
        active_opens,
        passive_opens,
        established,
        syn_queue_overflows,
        accept_queue_overflows,
        syn_cookies_sent,
        syn_cookies_accepted,
        syn_cookies_rejected,
        time_wait_reused,
        /// Connections that skipped TIME-WAIT because `TcpConfig::max_time_wait` others were
        /// in it (Linux: TCPTimeWaitOverflow).
        time_wait_overflows,
        resets_received,
        timeouts,
        icmp_accepted,
        /// ICMP errors failing the RFC 5927 checks (no connection, sequence out of range).
        icmp_ignored,
        /// Stateless replies dropped because the queue was full.
        stateless_queue_drops,
    }
}
