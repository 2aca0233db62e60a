//! What `dig` and `kdig` print, read back: the status, the header flags and the records of each
//! section, so a system test can compare a real resolver's view with the zone it queried.
//!
//! Both tools print a section as a `;; ANSWER SECTION:` line followed by one record a line
//! (`owner TTL CLASS TYPE RDATA`); the header differs only in punctuation (dig separates with
//! commas, kdig with semicolons), which the parser ignores.

/// One response as dig or kdig showed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigResponse {
    /// `NOERROR`, `NXDOMAIN`, `REFUSED` …
    pub status: String,
    /// The header flags, lower case (`qr`, `aa`, `rd`, `ra` …).
    pub flags: Vec<String>,
    /// Each record with its fields joined by one space: `www.demo.test. 300 IN CNAME demo.test.`
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
}

impl DigResponse {
    /// Reads the first response in `stdout`; `None` when there is none (a timeout, an error).
    pub fn parse(stdout: &str) -> Option<DigResponse> {
        let mut r = DigResponse::default();
        let mut section: Option<Section> = None;
        for line in stdout.lines() {
            let line = line.trim();
            if let Some(status) = field_after(line, "status:") {
                r.status = status.to_string();
                continue;
            }
            if let Some(flags) = flags_of(line) {
                r.flags = flags;
                continue;
            }
            if line.starts_with(";;") {
                section = Section::named(line);
                continue;
            }
            if line.is_empty() {
                section = None;
                continue;
            }
            if line.starts_with(';') {
                continue;
            }
            let record = line.split_whitespace().collect::<Vec<_>>().join(" ");
            match section {
                Some(Section::Answer) => r.answer.push(record),
                Some(Section::Authority) => r.authority.push(record),
                Some(Section::Additional) => r.additional.push(record),
                None => {}
            }
        }
        (!r.status.is_empty()).then_some(r)
    }

    /// Whether the header carries `flag` (`aa`, `ra` …).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

#[derive(Debug, Clone, Copy)]
enum Section {
    Answer,
    Authority,
    Additional,
}

impl Section {
    /// The section a `;; X SECTION:` line opens; `None` for the others (QUESTION, OPT …).
    fn named(line: &str) -> Option<Section> {
        let upper = line.to_ascii_uppercase();
        if !upper.contains("SECTION:") {
            return None;
        }
        if upper.contains("ANSWER") {
            Some(Section::Answer)
        } else if upper.contains("AUTHORITY") {
            Some(Section::Authority)
        } else if upper.contains("ADDITIONAL") {
            Some(Section::Additional)
        } else {
            None
        }
    }
}

/// The word after `key` on a header line, without its trailing `,` or `;`.
fn field_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    if !line.starts_with(";;") {
        return None;
    }
    let rest = &line[line.find(key)? + key.len()..];
    let word = rest.split_whitespace().next()?;
    Some(word.trim_end_matches([',', ';']))
}

/// `;; flags: qr aa rd; QUERY: 1, …` (dig) or `;; Flags: qr aa rd; QUERY: 1; …` (kdig).
fn flags_of(line: &str) -> Option<Vec<String>> {
    let rest = line
        .strip_prefix(";; flags:")
        .or_else(|| line.strip_prefix(";; Flags:"))?;
    let flags = rest.split(';').next().unwrap_or("");
    Some(flags.split_whitespace().map(str::to_lowercase).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIG_MX: &str = "
; <<>> DiG 9.18.49-1~deb12u3-Debian <<>> +tries=1 +time=2 @192.0.2.2 www.demo.test MX
; (1 server found)
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 22706
;; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 2
;; WARNING: recursion requested but not available

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;www.demo.test.			IN	MX

;; ANSWER SECTION:
www.demo.test.		300	IN	CNAME	demo.test.
demo.test.		300	IN	MX	10 mail.demo.test.

;; ADDITIONAL SECTION:
mail.demo.test.		300	IN	A	192.0.2.2

;; Query time: 0 msec
;; SERVER: 192.0.2.2#53(192.0.2.2) (UDP)
;; MSG SIZE  rcvd: 93
";

    const KDIG_NXDOMAIN: &str = ";; ->>HEADER<<- opcode: QUERY; status: NXDOMAIN; id: 16426
;; Flags: qr aa rd; QUERY: 1; ANSWER: 0; AUTHORITY: 1; ADDITIONAL: 0

;; QUESTION SECTION:
;; nope.demo.test.     		IN	A

;; AUTHORITY SECTION:
demo.test.          	60	IN	SOA	ns.demo.test. hostmaster.demo.test. 2026112501 3600 600 86400 60

;; Received 82 B
;; From 192.0.2.2@53(UDP) in 0.1 ms
";

    #[test]
    fn dig_output_gives_status_flags_and_sections_without_the_opt_or_question_lines() {
        let r = DigResponse::parse(DIG_MX).unwrap();
        assert_eq!(r.status, "NOERROR");
        assert_eq!(r.flags, ["qr", "aa", "rd"]);
        assert!(r.has_flag("aa") && !r.has_flag("ra"));
        assert_eq!(
            r.answer,
            [
                "www.demo.test. 300 IN CNAME demo.test.",
                "demo.test. 300 IN MX 10 mail.demo.test."
            ]
        );
        assert!(r.authority.is_empty());
        assert_eq!(r.additional, ["mail.demo.test. 300 IN A 192.0.2.2"]);
    }

    #[test]
    fn kdig_output_with_semicolons_and_a_capital_flags_parses_the_same_way() {
        let r = DigResponse::parse(KDIG_NXDOMAIN).unwrap();
        assert_eq!(r.status, "NXDOMAIN");
        assert_eq!(r.flags, ["qr", "aa", "rd"]);
        assert!(r.answer.is_empty());
        assert_eq!(
            r.authority,
            ["demo.test. 60 IN SOA ns.demo.test. hostmaster.demo.test. 2026112501 3600 600 86400 60"]
        );
    }

    #[test]
    fn a_timeout_without_a_header_is_no_response() {
        let out = ";; communications error to 192.0.2.2#53: timed out\n\
                   ;; no servers could be reached\n";
        assert_eq!(DigResponse::parse(out), None);
    }
}
