//! UDP counters, named after their causes.

netstack_network::counters! {
    /// What the UDP layer saw and did. Plain counters; the runtime sums them across workers.
    pub struct UdpStats {
        /// Datagrams handed to UDP by IPv4.
        rx_datagrams,
        /// Datagrams queued on a socket.
        rx_delivered,
        rx_truncated,
        rx_bad_length,
        rx_bad_checksum,
        rx_bad_port,
        /// Datagrams for a port nobody listens on (ICMP port unreachable, if not suppressed).
        rx_no_socket,
        /// Datagrams dropped because the socket's receive queue was full.
        rx_queue_full,
        /// ICMP errors passed to a connected socket (its next call reports them).
        icmp_errors_delivered,
        /// ICMP errors about a datagram no connected socket sent (ignored, as Linux does).
        icmp_errors_ignored,
        tx_datagrams,
        /// Datagrams that could not be sent (no route, too large).
        tx_errors,
    }
}

impl UdpStats {
    /// Counts a datagram rejected by the wire format under its cause.
    pub fn record_error(&mut self, e: super::UdpError) {
        use super::UdpError::*;
        match e {
            Truncated => self.rx_truncated += 1,
            BadLength => self.rx_bad_length += 1,
            BadChecksum => self.rx_bad_checksum += 1,
            BadPort => self.rx_bad_port += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sums_every_counter_and_for_each_names_them() {
        let mut a = UdpStats {
            rx_no_socket: 2,
            tx_errors: 1,
            ..UdpStats::default()
        };
        a.add(&UdpStats {
            rx_no_socket: 3,
            rx_bad_checksum: 4,
            ..UdpStats::default()
        });
        let mut seen = Vec::new();
        a.for_each(&mut |n, v| seen.push((n.to_string(), v)));
        assert_eq!(seen.len(), 12);
        assert!(seen.contains(&("rx_no_socket".into(), 5)));
        assert!(seen.contains(&("rx_bad_checksum".into(), 4)));
        assert!(seen.contains(&("tx_errors".into(), 1)));
    }
}
