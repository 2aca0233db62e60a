//! UDP counters, named after their causes.

/// What the UDP layer saw and did. Plain counters; the runtime sums them across workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams handed to UDP by IPv4.
    pub rx_datagrams: u64,
    /// Datagrams queued on a socket.
    pub rx_delivered: u64,
    pub rx_truncated: u64,
    pub rx_bad_length: u64,
    pub rx_bad_checksum: u64,
    pub rx_bad_port: u64,
    /// Datagrams for a port nobody listens on (ICMP port unreachable, if not suppressed).
    pub rx_no_socket: u64,
    /// Datagrams dropped because the socket's receive queue was full.
    pub rx_queue_full: u64,
    /// ICMP errors passed to a connected socket (its next call reports them).
    pub icmp_errors_delivered: u64,
    /// ICMP errors about a datagram no connected socket sent (ignored, as Linux does).
    pub icmp_errors_ignored: u64,
    pub tx_datagrams: u64,
    /// Datagrams that could not be sent (no route, too large).
    pub tx_errors: u64,
}

impl UdpStats {
    fn fields(&self) -> [(&'static str, u64); 12] {
        let UdpStats {
            rx_datagrams,
            rx_delivered,
            rx_truncated,
            rx_bad_length,
            rx_bad_checksum,
            rx_bad_port,
            rx_no_socket,
            rx_queue_full,
            icmp_errors_delivered,
            icmp_errors_ignored,
            tx_datagrams,
            tx_errors,
        } = *self;
        [
            ("rx_datagrams", rx_datagrams),
            ("rx_delivered", rx_delivered),
            ("rx_truncated", rx_truncated),
            ("rx_bad_length", rx_bad_length),
            ("rx_bad_checksum", rx_bad_checksum),
            ("rx_bad_port", rx_bad_port),
            ("rx_no_socket", rx_no_socket),
            ("rx_queue_full", rx_queue_full),
            ("icmp_errors_delivered", icmp_errors_delivered),
            ("icmp_errors_ignored", icmp_errors_ignored),
            ("tx_datagrams", tx_datagrams),
            ("tx_errors", tx_errors),
        ]
    }

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

    /// Calls `f` with every counter's name and value.
    pub fn for_each(&self, f: &mut dyn FnMut(&str, u64)) {
        for (n, v) in self.fields() {
            f(n, v);
        }
    }

    pub fn add(&mut self, o: &UdpStats) {
        let UdpStats {
            rx_datagrams,
            rx_delivered,
            rx_truncated,
            rx_bad_length,
            rx_bad_checksum,
            rx_bad_port,
            rx_no_socket,
            rx_queue_full,
            icmp_errors_delivered,
            icmp_errors_ignored,
            tx_datagrams,
            tx_errors,
        } = self;
        *rx_datagrams += o.rx_datagrams;
        *rx_delivered += o.rx_delivered;
        *rx_truncated += o.rx_truncated;
        *rx_bad_length += o.rx_bad_length;
        *rx_bad_checksum += o.rx_bad_checksum;
        *rx_bad_port += o.rx_bad_port;
        *rx_no_socket += o.rx_no_socket;
        *rx_queue_full += o.rx_queue_full;
        *icmp_errors_delivered += o.icmp_errors_delivered;
        *icmp_errors_ignored += o.icmp_errors_ignored;
        *tx_datagrams += o.tx_datagrams;
        *tx_errors += o.tx_errors;
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
