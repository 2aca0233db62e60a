//! The status pages netstackd's HTTP service shows: the stack's counters and TCP connection
//! table as JSON (`/stats`) and as an HTML page (`/`) that refreshes itself from `/stats` and
//! carries a small WebSocket echo console for `/ws`.

use std::fmt::Write as _;

use netstack_runtime::{StackObserver, TcpInfo};

use crate::http::files::html_escape;
use crate::http::Response;

/// What the pages show: every counter by name, and the connections.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Counters as (`layer.name`, value): the stack's, then the services'.
    pub counters: Vec<(String, u64)>,
    /// The TCP connection table.
    pub connections: Vec<TcpInfo>,
}

impl Snapshot {
    /// Reads the stack's counters and connections now, with `extra` counters after them.
    pub fn take(stack: &StackObserver, extra: Vec<(String, u64)>) -> Snapshot {
        let mut counters = stack.stats().counters();
        counters.extend(extra);
        Snapshot {
            counters,
            connections: stack.connections(),
        }
    }

    /// The snapshot as one JSON object:
    /// `{"counters": {"link.frames_in": 1, …}, "connections": [{"local": "…", …}, …]}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"counters\":{");
        for (i, (name, v)) in self.counters.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{v}", json_string(name));
        }
        out.push_str("},\"connections\":[");
        for (i, c) in self.connections.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"local\":{},\"remote\":{},\"state\":{},\"worker\":{},\"send_queue\":{},\
                 \"recv_queue\":{},\"cwnd\":{},\"ssthresh\":{},\"srtt_us\":{},\"rto_us\":{},\
                 \"snd_wnd\":{},\"rcv_wnd\":{},\"bytes_sent\":{},\"bytes_acked\":{},\
                 \"bytes_received\":{},\"segments_sent\":{},\"segments_received\":{},\
                 \"retransmissions\":{}}}",
                json_string(&c.local.to_string()),
                json_string(&c.remote.to_string()),
                json_string(&format!("{:?}", c.state)),
                c.worker,
                c.send_queue,
                c.recv_queue,
                c.cwnd,
                // u64::MAX before the first loss: JSON numbers that large lose precision in
                // JavaScript, so it is written as null.
                if c.ssthresh == u64::MAX {
                    "null".to_string()
                } else {
                    c.ssthresh.to_string()
                },
                c.srtt
                    .map_or_else(|| "null".to_string(), |d| d.as_micros().to_string()),
                c.rto.as_micros(),
                c.snd_wnd,
                c.rcv_wnd,
                c.bytes_sent,
                c.bytes_acked,
                c.bytes_received,
                c.segments_sent,
                c.segments_received,
                c.retransmissions,
            );
        }
        out.push_str("]}");
        out
    }

    /// `/stats`: the JSON, not cached.
    pub fn json_response(&self) -> Response {
        Response::with_body(200, "application/json", self.to_json())
            .header("Cache-Control", "no-store")
    }

    /// `/`: the HTML page, with the snapshot rendered in (it works without JavaScript) and a
    /// script that refreshes the tables from `/stats` every second.
    pub fn html_response(&self) -> Response {
        Response::with_body(200, "text/html; charset=utf-8", self.to_html())
            .header("Cache-Control", "no-store")
    }

    /// The HTML page.
    pub fn to_html(&self) -> String {
        let mut counters = String::new();
        for (name, v) in self.counters.iter().filter(|(_, v)| *v != 0) {
            let _ = write!(
                counters,
                "<tr><td>{}</td><td class=n>{v}</td></tr>",
                html_escape(name)
            );
        }
        let mut conns = String::new();
        for c in &self.connections {
            let _ = write!(
                conns,
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                html_escape(&c.local.to_string()),
                html_escape(&c.remote.to_string()),
                c.state,
                c.send_queue,
                c.recv_queue,
                c.bytes_sent,
                c.bytes_received,
            );
        }
        PAGE.replace("{{counters}}", &counters)
            .replace("{{connections}}", &conns)
            .replace("{{connection_count}}", &self.connections.len().to_string())
    }
}

/// `s` as a JSON string literal (RFC 8259 §7).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const PAGE: &str = r#"<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<title>netstackd</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222 }
h1 { font-size: 1.4em } h2 { font-size: 1.1em; margin-top: 1.5em }
table { border-collapse: collapse } td, th { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left }
td.n { text-align: right; font-variant-numeric: tabular-nums }
#log { white-space: pre; background: #f6f6f6; padding: 6px; height: 8em; overflow: auto; width: 40em }
</style>
</head>
<body>
<h1>netstackd</h1>
<p>A user-space TCP/IP stack. This page, <a href="/stats">/stats</a> (JSON) and the WebSocket echo at <code>/ws</code> are served by its own HTTP and WebSocket code over its own TCP.</p>
<h2>TCP connections (<span id=count>{{connection_count}}</span>)</h2>
<table><thead><tr><th>local</th><th>remote</th><th>state</th><th>send queue</th><th>recv queue</th><th>bytes sent</th><th>bytes received</th></tr></thead>
<tbody id=conns>{{connections}}</tbody></table>
<h2>WebSocket echo</h2>
<input id=msg value="hello" size=40> <button id=send>send</button>
<div id=log></div>
<h2>Counters (non-zero)</h2>
<table><tbody id=counters>{{counters}}</tbody></table>
<script>
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c])); }
async function refresh() {
  try {
    const s = await (await fetch('/stats', {cache: 'no-store'})).json();
    document.getElementById('counters').innerHTML = Object.entries(s.counters).filter(([k, v]) => v != 0)
      .map(([k, v]) => `<tr><td>${esc(k)}</td><td class=n>${v}</td></tr>`).join('');
    document.getElementById('conns').innerHTML = s.connections.map(c =>
      `<tr><td>${esc(c.local)}</td><td>${esc(c.remote)}</td><td>${esc(c.state)}</td><td class=n>${c.send_queue}</td><td class=n>${c.recv_queue}</td><td class=n>${c.bytes_sent}</td><td class=n>${c.bytes_received}</td></tr>`).join('');
    document.getElementById('count').textContent = s.connections.length;
  } catch (e) {}
}
setInterval(refresh, 1000);
let ws;
function log(line) { const l = document.getElementById('log'); l.textContent += line + '\n'; l.scrollTop = l.scrollHeight; }
document.getElementById('send').onclick = () => {
  const text = document.getElementById('msg').value;
  if (!ws || ws.readyState > 1) {
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    ws.onmessage = e => log('< ' + e.data);
    ws.onclose = e => log('closed ' + e.code);
    ws.onopen = () => { ws.send(text); log('> ' + text); };
  } else { ws.send(text); log('> ' + text); }
};
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    fn snapshot() -> Snapshot {
        let a = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
        let b = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        Snapshot {
            counters: vec![("link.frames_in".into(), 3), ("tcp.\"odd\"".into(), 0)],
            connections: vec![TcpInfo {
                local: a,
                remote: b,
                worker: 1,
                state: netstack_runtime::TcpState::Established,
                send_queue: 5,
                recv_queue: 6,
                cwnd: 14480,
                ssthresh: u64::MAX,
                srtt: Some(Duration::from_micros(250)),
                rto: Duration::from_millis(200),
                snd_wnd: 65535,
                rcv_wnd: 65535,
                bytes_sent: 10,
                bytes_acked: 10,
                bytes_received: 20,
                segments_sent: 3,
                segments_received: 4,
                retransmissions: 0,
            }],
        }
    }

    #[test]
    fn stats_json_escapes_names_and_writes_unknowns_as_null() {
        let j = snapshot().to_json();
        assert!(j.starts_with("{\"counters\":{\"link.frames_in\":3,\"tcp.\\\"odd\\\"\":0},"));
        assert!(j.contains("\"local\":\"192.0.2.2:80\""));
        assert!(j.contains("\"state\":\"Established\""));
        assert!(j.contains("\"ssthresh\":null"));
        assert!(j.contains("\"srtt_us\":250"));
        assert!(j.ends_with("}]}"));
    }

    #[test]
    fn html_page_shows_nonzero_counters_and_connections_escaped() {
        let mut s = snapshot();
        s.counters.push(("<b>x".into(), 1));
        let h = s.to_html();
        assert!(h.contains("<td>link.frames_in</td><td class=n>3</td>"));
        assert!(
            !h.contains("tcp.&quot;odd&quot;"),
            "zero counters are left out"
        );
        assert!(h.contains("&lt;b&gt;x"));
        assert!(h.contains("<td>192.0.2.1:40000</td>"));
        assert!(!h.contains("{{"));
    }
}
