//! The blocking WebSocket connection: messages in and out over any byte stream, with the
//! rules of RFC 6455 §5 and the close handshake of §7.
//!
//! Reading is incremental: bytes go through the sans-IO [`FrameReader`] as they arrive, so a
//! violation (including invalid UTF-8 inside a text frame not yet complete) fails the
//! connection at once (§8.1 "fail fast"). Failing means (§7.1.7): send a close frame with the
//! code of the violation, stop sending, let the peer answer within the close timeout, and
//! close the TCP connection; the caller then gets `InvalidData`.

use std::io;
use std::time::{Duration, Instant};

use super::frame::{self, FrameEvent, FrameHeader, FrameReader, Masking, OpCode};
use super::utf8::Utf8Validator;
use super::{Message, Role, WsConfig, WsStream};

/// How many bytes one read asks the stream for.
const READ_CHUNK: usize = 64 * 1024;

/// The longest close reason: a control payload is at most 125 bytes, 2 of them the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// True for the close codes an endpoint may receive and send (RFC 6455 §7.4.1, §7.4.2 and the
/// IANA registry as the Autobahn testsuite reads it): 1000-1003, 1007-1011 and 3000-4999.
/// 1005, 1006 and 1015 are never put on the wire.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Messages flow both ways.
    Open,
    /// The close handshake is over or the connection failed: nothing more is read or sent.
    Closed,
}

/// What the frames read so far amount to.
enum Incoming {
    Message(Message),
    Close(Option<(u16, String)>),
}

/// Why reading stopped.
enum Fail {
    /// A protocol violation: the close code to fail with and what happened.
    Protocol(u16, String),
    Io(io::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

fn violation(code: u16, why: &str) -> Fail {
    Fail::Protocol(code, why.to_string())
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the WebSocket is closed")
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A WebSocket connection over the stream `S`, after the opening handshake.
///
/// Pings are answered with pongs carrying the same payload while reading; pongs are ignored.
/// A read or write timeout of the stream surfaces as `WouldBlock`/`TimedOut` and leaves the
/// connection usable: `read_message` continues where it stopped.
pub struct WebSocket<S> {
    stream: S,
    role: Role,
    config: WsConfig,
    protocol: Option<String>,
    /// Bytes read and not yet consumed: `inbuf[pos..end]` (the rest is room for reads).
    inbuf: Vec<u8>,
    pos: usize,
    end: usize,
    reader: FrameReader,
    /// The header of the frame whose payload is being read.
    frame: Option<FrameHeader>,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    /// The data message being assembled, its kind, and the UTF-8 state of a text message.
    message: Vec<u8>,
    kind: Option<DataKind>,
    utf8: Utf8Validator,
    state: State,
    sent_close: bool,
    /// The close code this end failed the connection with, if it did.
    failed_with: Option<u16>,
    out: Vec<u8>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("protocol", &self.protocol)
            .field("state", &self.state)
            .field("sent_close", &self.sent_close)
            .finish()
    }
}

impl<S: WsStream> WebSocket<S> {
    /// A connection over `stream` whose opening handshake is done, as `role`, with `buffered`
    /// holding bytes already read past the handshake (they are the first frames).
    pub fn from_upgraded(
        stream: S,
        role: Role,
        config: WsConfig,
        protocol: Option<String>,
        buffered: Vec<u8>,
    ) -> WebSocket<S> {
        let masking = match role {
            Role::Server => Masking::Required,
            Role::Client => Masking::Forbidden,
        };
        let reader = FrameReader::new(masking, config.max_frame_size as u64);
        WebSocket {
            stream,
            role,
            config,
            protocol,
            end: buffered.len(),
            inbuf: buffered,
            pos: 0,
            reader,
            frame: None,
            control: Vec::new(),
            message: Vec::new(),
            kind: None,
            utf8: Utf8Validator::new(),
            state: State::Open,
            sent_close: false,
            failed_with: None,
            out: Vec::new(),
        }
    }

    /// The close code this end failed the connection with (RFC 6455 §7.1.7: 1002, 1007 or
    /// 1009), once a read or write returned `InvalidData` for a protocol violation.
    pub fn failed_with(&self) -> Option<u16> {
        self.failed_with
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Which side of the connection this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True once the close handshake is over or the connection failed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream (reading or writing on it directly breaks the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, giving up the connection.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Reads the next message. The peer's close is reported once as `Message::Close` (with its
    /// code and reason, if it sent one) after the close reply went out; later calls fail with
    /// `NotConnected`. A protocol violation fails the connection with the right close code
    /// (1002, 1007 or 1009) and returns `InvalidData`; the peer closing the connection without a
    /// close frame gives `UnexpectedEof`.
    pub fn read_message(&mut self) -> io::Result<Message> {
        if self.state == State::Closed {
            return Err(closed_error());
        }
        match self.next_incoming() {
            Ok(Incoming::Message(m)) => Ok(m),
            Ok(Incoming::Close(close)) => {
                if !self.sent_close {
                    // RFC 6455 §5.5.1: answer with a close that echoes the code.
                    let code = close.as_ref().map(|(c, _)| *c);
                    if let Err(e) = self.send_close_frame(code, "") {
                        log::debug!("websocket close reply not sent: {e}");
                    }
                }
                self.finish_close();
                Ok(Message::Close(close))
            }
            Err(Fail::Protocol(code, why)) => {
                log::debug!("websocket failed with {code}: {why}");
                self.fail(code);
                Err(io::Error::new(io::ErrorKind::InvalidData, why))
            }
            Err(Fail::Io(e)) => {
                if !retryable(&e) {
                    self.state = State::Closed;
                }
                Err(e)
            }
        }
    }

    /// Sends a message; `Message::Close` closes as [`WebSocket::close`] does (`None`: a close
    /// frame without code).
    pub fn send(&mut self, message: Message) -> io::Result<()> {
        match message {
            Message::Text(t) => self.send_text(&t),
            Message::Binary(b) => self.send_binary(&b),
            Message::Close(Some((code, reason))) => self.close(code, &reason),
            Message::Close(None) => self.close_with(None, ""),
        }
    }

    /// Sends a text message in one frame.
    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send_frame_checked(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> io::Result<()> {
        self.send_frame_checked(OpCode::Binary, data)
    }

    /// Sends a ping (at most 125 bytes of payload, else `InvalidInput`). Its pong is consumed
    /// by `read_message`.
    pub fn ping(&mut self, payload: &[u8]) -> io::Result<()> {
        if payload.len() > frame::MAX_CONTROL_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a ping payload is at most 125 bytes",
            ));
        }
        self.send_frame_checked(OpCode::Ping, payload)
    }

    /// Starts and completes the close handshake (RFC 6455 §7.1.2): sends a close frame with
    /// `code` and `reason`, reads (and drops) messages until the peer's close arrives or the
    /// close timeout passes, then closes the TCP connection (a server at once, a client once
    /// the server has closed it or the timeout passed, §7.1.1). `code` must be one of
    /// [`is_valid_close_code`] and `reason` at most 123 bytes, else `InvalidInput`.
    pub fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        if !is_valid_close_code(code) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("close code {code} may not be sent"),
            ));
        }
        self.close_with(Some(code), reason)
    }

    fn close_with(&mut self, code: Option<u16>, reason: &str) -> io::Result<()> {
        if reason.len() > MAX_CLOSE_REASON {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a close reason is at most 123 bytes",
            ));
        }
        if self.state == State::Closed || self.sent_close {
            return Err(closed_error());
        }
        self.send_close_frame(code, reason)?;
        let deadline = Instant::now() + self.config.close_timeout;
        let _ = self
            .stream
            .set_read_timeout(Some(self.config.close_timeout));
        while Instant::now() < deadline {
            match self.next_incoming() {
                Ok(Incoming::Message(_)) => {}
                Ok(Incoming::Close(_)) => break,
                Err(Fail::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.finish_close();
        Ok(())
    }

    fn send_frame_checked(&mut self, opcode: OpCode, payload: &[u8]) -> io::Result<()> {
        if self.state == State::Closed || self.sent_close {
            return Err(closed_error());
        }
        self.write_frame(opcode, payload)
    }

    fn send_close_frame(&mut self, code: Option<u16>, reason: &str) -> io::Result<()> {
        self.sent_close = true;
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        self.write_frame(OpCode::Close, &payload)
    }

    fn write_frame(&mut self, opcode: OpCode, payload: &[u8]) -> io::Result<()> {
        // RFC 6455 §5.3: a client masks every frame with a fresh unpredictable key.
        let mask = match self.role {
            Role::Client => {
                let mut key = [0u8; 4];
                getrandom::fill(&mut key).map_err(io::Error::other)?;
                Some(key)
            }
            Role::Server => None,
        };
        self.out.clear();
        frame::write_frame(&mut self.out, true, opcode, mask, payload);
        self.stream.write_all(&self.out)?;
        self.stream.flush()
    }

    /// After the close handshake: a server closes the TCP connection first; a client waits for
    /// the server to close it (RFC 6455 §7.1.1), bounded by the close timeout.
    fn finish_close(&mut self) {
        self.state = State::Closed;
        match self.role {
            Role::Server => {
                let _ = self.stream.shutdown_write();
            }
            Role::Client => self.drain_until_eof(),
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): a close frame with `code` unless one went out
    /// already, then the TCP close; the peer's answer is read and dropped until it closes its
    /// side or the close timeout passes, so unread bytes never turn our close into a reset.
    fn fail(&mut self, code: u16) {
        self.failed_with.get_or_insert(code);
        if !self.sent_close {
            if let Err(e) = self.send_close_frame(Some(code), "") {
                log::debug!("websocket close frame not sent: {e}");
            }
        }
        self.state = State::Closed;
        if self.role == Role::Server {
            let _ = self.stream.shutdown_write();
        }
        self.drain_until_eof();
    }

    fn drain_until_eof(&mut self) {
        let timeout = self.config.close_timeout;
        let deadline = Instant::now() + timeout;
        let _ = self
            .stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut scratch = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Reads until a message or a close frame is complete.
    fn next_incoming(&mut self) -> Result<Incoming, Fail> {
        loop {
            if let Some(incoming) = self.process()? {
                return Ok(incoming);
            }
            match self.fill() {
                Ok(0) => {
                    return Err(Fail::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection without a close frame",
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::Io(e)),
            }
        }
    }

    /// Reads once from the stream, after the unconsumed bytes.
    fn fill(&mut self) -> io::Result<usize> {
        // What is left unconsumed is at most a partial frame header: move it to the front.
        self.inbuf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.inbuf.len() < self.end + READ_CHUNK {
            self.inbuf.resize(self.end + READ_CHUNK, 0);
        }
        let n = self.stream.read(&mut self.inbuf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Runs the buffered bytes through the frame reader until a message or close frame is
    /// complete (returned) or the bytes run out (`None`).
    fn process(&mut self) -> Result<Option<Incoming>, Fail> {
        loop {
            let control = self.frame.is_some_and(|h| h.opcode.is_control());
            let target = if control {
                &mut self.control
            } else {
                &mut self.message
            };
            let before = target.len();
            let (n, event) = self
                .reader
                .feed(&self.inbuf[self.pos..self.end], target)
                .map_err(|e| Fail::Protocol(e.close_code(), e.to_string()))?;
            self.pos += n;
            if !control && self.kind == Some(DataKind::Text) && self.message.len() > before {
                // RFC 6455 §8.1: fail as soon as the text can no longer be valid.
                if self.utf8.feed(&self.message[before..]).is_err() {
                    return Err(violation(1007, "invalid UTF-8 in a text message"));
                }
            }
            match event {
                None => return Ok(None),
                Some(FrameEvent::Header(h)) => self.on_header(h)?,
                Some(FrameEvent::End) => {
                    if let Some(h) = self.frame.take() {
                        if let Some(incoming) = self.on_frame_end(h)? {
                            return Ok(Some(incoming));
                        }
                    }
                }
            }
        }
    }

    /// The rules across frames (RFC 6455 §5.4): continuations continue a message, data frames
    /// start one, control frames may come in between; the message size limit.
    fn on_header(&mut self, h: FrameHeader) -> Result<(), Fail> {
        if h.opcode.is_control() {
            self.control.clear();
        } else {
            match (h.opcode, self.kind) {
                (OpCode::Continuation, None) => {
                    return Err(violation(1002, "a continuation frame without a message"));
                }
                (OpCode::Continuation, Some(_)) => {}
                (_, Some(_)) => {
                    return Err(violation(1002, "a new message inside a fragmented one"));
                }
                (opcode, None) => {
                    self.kind = Some(if opcode == OpCode::Text {
                        DataKind::Text
                    } else {
                        DataKind::Binary
                    });
                    self.message.clear();
                    self.utf8.reset();
                }
            }
            if self.message.len() as u64 + h.payload_len > self.config.max_message_size as u64 {
                return Err(violation(1009, "message above the size limit"));
            }
        }
        self.frame = Some(h);
        Ok(())
    }

    fn on_frame_end(&mut self, h: FrameHeader) -> Result<Option<Incoming>, Fail> {
        match h.opcode {
            OpCode::Ping => {
                // RFC 6455 §5.5.2: answer with a pong carrying the same payload, unless our
                // close went out already.
                if !self.sent_close {
                    let payload = std::mem::take(&mut self.control);
                    self.write_frame(OpCode::Pong, &payload)?;
                }
                Ok(None)
            }
            // §5.5.3: an unsolicited pong needs no answer.
            OpCode::Pong => Ok(None),
            OpCode::Close => Ok(Some(Incoming::Close(parse_close(&self.control)?))),
            _ if !h.fin => Ok(None),
            _ => {
                let data = std::mem::take(&mut self.message);
                match self.kind.take() {
                    Some(DataKind::Text) => {
                        if !self.utf8.is_complete() {
                            return Err(violation(1007, "a text message ends inside a character"));
                        }
                        let text = String::from_utf8(data)
                            .map_err(|_| violation(1007, "invalid UTF-8 in a text message"))?;
                        Ok(Some(Incoming::Message(Message::Text(text))))
                    }
                    _ => Ok(Some(Incoming::Message(Message::Binary(data)))),
                }
            }
        }
    }
}

/// The body of a close frame (RFC 6455 §5.5.1): nothing, or a valid code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, Fail> {
    match payload {
        [] => Ok(None),
        [_] => Err(violation(1002, "a close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(Fail::Protocol(1002, format!("invalid close code {code}")));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| violation(1007, "invalid UTF-8 in the close reason"))?;
            Ok(Some((code, reason.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::Frame;
    use std::io::{Cursor, Read, Write};

    /// A stream that reads from prepared bytes and collects what is written.
    struct Mock {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Mock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl WsStream for Mock {
        fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn shutdown_write(&self) -> io::Result<()> {
            Ok(())
        }
    }

    const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    /// A masked frame as a client sends it.
    fn cf(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::write_frame(&mut out, fin, opcode, Some(KEY), payload);
        out
    }

    fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        p
    }

    fn server(input: Vec<u8>) -> WebSocket<Mock> {
        server_with(input, WsConfig::default())
    }

    fn server_with(input: Vec<u8>, config: WsConfig) -> WebSocket<Mock> {
        let mock = Mock {
            input: Cursor::new(input),
            output: Vec::new(),
        };
        WebSocket::from_upgraded(mock, Role::Server, config, None, Vec::new())
    }

    /// The frames a server wrote (unmasked).
    fn written(ws: &WebSocket<Mock>) -> Vec<Frame> {
        let mut out = &ws.get_ref().output[..];
        let mut frames = Vec::new();
        while let Some((f, n)) = Frame::parse(out, Masking::Forbidden, u64::MAX >> 1).unwrap() {
            frames.push(f);
            out = &out[n..];
        }
        assert!(out.is_empty(), "trailing bytes");
        frames
    }

    fn close_code_sent(ws: &WebSocket<Mock>) -> Option<u16> {
        let frames = written(ws);
        let close = frames.iter().find(|f| f.opcode == OpCode::Close)?;
        Some(u16::from_be_bytes([close.payload[0], close.payload[1]]))
    }

    /// Reads from `input` until an error; asserts it is InvalidData and returns the close code
    /// the server sent.
    fn fails_with(input: Vec<u8>) -> u16 {
        fails_with_config(input, WsConfig::default())
    }

    fn fails_with_config(input: Vec<u8>, config: WsConfig) -> u16 {
        let mut ws = server_with(input, config);
        loop {
            match ws.read_message() {
                Ok(_) => continue,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                    assert!(ws.is_closed());
                    assert_eq!(
                        ws.read_message().unwrap_err().kind(),
                        io::ErrorKind::NotConnected
                    );
                    let sent = close_code_sent(&ws).expect("a close frame was sent");
                    assert_eq!(
                        ws.failed_with(),
                        Some(sent),
                        "failed_with names the code sent"
                    );
                    return sent;
                }
            }
        }
    }

    #[test]
    fn text_and_binary_messages_are_read() {
        let mut input = cf(true, OpCode::Text, "héllo".as_bytes());
        input.extend(cf(true, OpCode::Binary, &[0, 1, 2]));
        input.extend(cf(true, OpCode::Text, b""));
        let mut ws = server(input);
        assert_eq!(ws.read_message().unwrap(), Message::Text("héllo".into()));
        assert_eq!(ws.read_message().unwrap(), Message::Binary(vec![0, 1, 2]));
        assert_eq!(ws.read_message().unwrap(), Message::Text(String::new()));
        assert_eq!(
            ws.read_message().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn fragments_assemble_with_pings_between_them_answered_by_pongs() {
        let mut input = cf(false, OpCode::Text, b"frag");
        input.extend(cf(true, OpCode::Ping, b"are you there"));
        input.extend(cf(false, OpCode::Continuation, b"ment"));
        input.extend(cf(true, OpCode::Pong, b"unsolicited"));
        input.extend(cf(true, OpCode::Continuation, b"ed"));
        let mut ws = server(input);
        assert_eq!(
            ws.read_message().unwrap(),
            Message::Text("fragmented".into())
        );
        let frames = written(&ws);
        assert_eq!(
            frames.len(),
            1,
            "only the pong: the unsolicited pong is ignored"
        );
        assert_eq!(
            (frames[0].opcode, &frames[0].payload[..]),
            (OpCode::Pong, &b"are you there"[..])
        );
        assert_eq!(frames[0].mask, None);
    }

    #[test]
    fn a_continuation_without_a_start_fails_with_1002() {
        assert_eq!(fails_with(cf(true, OpCode::Continuation, b"x")), 1002);
    }

    #[test]
    fn a_new_data_frame_inside_a_fragmented_message_fails_with_1002() {
        let mut input = cf(false, OpCode::Binary, b"a");
        input.extend(cf(true, OpCode::Text, b"b"));
        assert_eq!(fails_with(input), 1002);
    }

    #[test]
    fn frame_level_violations_fail_with_1002() {
        let unmasked = vec![0x81, 0x01, b'a'];
        let rsv = {
            let mut f = cf(true, OpCode::Text, b"a");
            f[0] |= 0x40;
            f
        };
        let reserved_opcode = {
            let mut f = cf(true, OpCode::Binary, b"a");
            f[0] = 0x83;
            f
        };
        let reserved_control = {
            let mut f = cf(true, OpCode::Ping, b"a");
            f[0] = 0x8B;
            f
        };
        let long_ping = cf(true, OpCode::Ping, &[0; 126]);
        let fragmented_ping = cf(false, OpCode::Ping, b"a");
        let msb_length = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
        for (name, input) in [
            ("unmasked", unmasked),
            ("rsv", rsv),
            ("reserved opcode", reserved_opcode),
            ("reserved control opcode", reserved_control),
            ("long ping", long_ping),
            ("fragmented ping", fragmented_ping),
            ("64-bit length msb", msb_length),
        ] {
            assert_eq!(fails_with(input), 1002, "{name}");
        }
    }

    #[test]
    fn a_client_rejects_a_masked_server_frame_with_1002() {
        let mock = Mock {
            input: Cursor::new(cf(true, OpCode::Text, b"a")),
            output: Vec::new(),
        };
        let mut ws =
            WebSocket::from_upgraded(mock, Role::Client, WsConfig::default(), None, vec![]);
        assert_eq!(
            ws.read_message().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let (f, _) = Frame::parse(&ws.get_ref().output, Masking::Required, 1000)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.opcode, &f.payload[..]),
            (OpCode::Close, &1002u16.to_be_bytes()[..])
        );
    }

    #[test]
    fn invalid_utf8_fails_fast_with_1007_before_the_frame_is_complete() {
        // A header announcing 100 bytes, then an overlong lead byte; nothing more arrives (the
        // stream ends), yet the error is the UTF-8 violation, not the early end.
        let full = cf(true, OpCode::Text, &[b'a'; 100]);
        let mut input = full[..6].to_vec();
        input.push(0xC0 ^ KEY[0]);
        input.push(b'a' ^ KEY[1]);
        assert_eq!(fails_with(input), 1007);
    }

    #[test]
    fn a_code_point_split_across_fragments_is_valid() {
        let euro = "€".as_bytes();
        let mut input = cf(false, OpCode::Text, &[b'x', euro[0]]);
        input.extend(cf(false, OpCode::Continuation, &euro[1..2]));
        input.extend(cf(true, OpCode::Continuation, &euro[2..]));
        assert_eq!(
            server(input).read_message().unwrap(),
            Message::Text("x€".into())
        );
    }

    #[test]
    fn an_invalid_code_point_split_across_fragments_fails_with_1007() {
        // E2 82 starts a three-byte sequence; '(' cannot continue it.
        let mut input = cf(false, OpCode::Text, &[0xE2]);
        input.extend(cf(false, OpCode::Continuation, &[0x82]));
        input.extend(cf(true, OpCode::Continuation, b"(rest"));
        assert_eq!(fails_with(input), 1007);
        // A message ending inside a code point.
        let mut input = cf(false, OpCode::Text, b"ok");
        input.extend(cf(true, OpCode::Continuation, &[0xE2, 0x82]));
        assert_eq!(fails_with(input), 1007);
    }

    #[test]
    fn frames_and_messages_above_the_limits_fail_with_1009() {
        let config = WsConfig {
            max_frame_size: 100,
            max_message_size: 150,
            ..WsConfig::default()
        };
        assert_eq!(
            fails_with_config(cf(true, OpCode::Binary, &[0; 101]), config.clone()),
            1009
        );
        let mut input = cf(false, OpCode::Binary, &[0; 100]);
        input.extend(cf(true, OpCode::Continuation, &[0; 51]));
        assert_eq!(fails_with_config(input, config.clone()), 1009);
        let mut input = cf(false, OpCode::Binary, &[0; 100]);
        input.extend(cf(true, OpCode::Continuation, &[0; 50]));
        assert_eq!(
            server_with(input, config).read_message().unwrap(),
            Message::Binary(vec![0; 150])
        );
    }

    #[test]
    fn the_peers_close_is_reported_once_and_its_code_echoed() {
        let mut ws = server(cf(true, OpCode::Close, &close_payload(1001, b"going away")));
        assert_eq!(
            ws.read_message().unwrap(),
            Message::Close(Some((1001, "going away".into())))
        );
        assert_eq!(close_code_sent(&ws), Some(1001));
        assert_eq!(
            ws.read_message().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        assert_eq!(
            ws.send_text("late").unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );

        // An empty close is answered with an empty close.
        let mut ws = server(cf(true, OpCode::Close, b""));
        assert_eq!(ws.read_message().unwrap(), Message::Close(None));
        let frames = written(&ws);
        assert_eq!(
            (frames[0].opcode, frames[0].payload.len()),
            (OpCode::Close, 0)
        );
    }

    #[test]
    fn every_valid_close_code_is_echoed() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            let mut ws = server(cf(true, OpCode::Close, &close_payload(code, b"")));
            assert_eq!(
                ws.read_message().unwrap(),
                Message::Close(Some((code, String::new())))
            );
            assert_eq!(close_code_sent(&ws), Some(code));
        }
    }

    #[test]
    fn invalid_close_codes_and_a_one_byte_close_fail_with_1002() {
        for code in [
            0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                fails_with(cf(true, OpCode::Close, &close_payload(code, b""))),
                1002,
                "{code}"
            );
        }
        assert_eq!(fails_with(cf(true, OpCode::Close, &[0x03])), 1002);
    }

    #[test]
    fn a_close_reason_that_is_not_utf8_fails_with_1007() {
        assert_eq!(
            fails_with(cf(
                true,
                OpCode::Close,
                &close_payload(1000, b"\xCE\xBA\xE1\xBD")
            )),
            1007
        );
    }

    #[test]
    fn our_close_sends_the_code_and_waits_for_the_peers_close() {
        // Data arriving before the peer's close is dropped.
        let mut input = cf(true, OpCode::Text, b"in flight");
        input.extend(cf(true, OpCode::Close, &close_payload(1000, b"")));
        let mut ws = server(input);
        ws.close(1000, "done").unwrap();
        assert!(ws.is_closed());
        let frames = written(&ws);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload, close_payload(1000, b"done"));
        assert!(ws.get_ref().input.position() as usize == ws.get_ref().input.get_ref().len());
    }

    #[test]
    fn codes_reserved_for_reports_are_never_sent() {
        for code in [1005, 1006, 1015, 999, 5000] {
            let mut ws = server(Vec::new());
            assert_eq!(
                ws.close(code, "").unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            assert!(ws.get_ref().output.is_empty());
        }
        let mut ws = server(Vec::new());
        let long = "x".repeat(124);
        assert_eq!(
            ws.close(1000, &long).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            ws.ping(&[0; 126]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn a_client_masks_what_it_sends_and_the_server_does_not() {
        let mock = Mock {
            input: Cursor::new(Vec::new()),
            output: Vec::new(),
        };
        let mut ws =
            WebSocket::from_upgraded(mock, Role::Client, WsConfig::default(), None, vec![]);
        ws.send_text("masked").unwrap();
        let (f, _) = Frame::parse(&ws.get_ref().output, Masking::Required, 1000)
            .unwrap()
            .unwrap();
        assert_eq!(f.payload, b"masked");
        let mut ws = server(Vec::new());
        ws.send_binary(b"plain").unwrap();
        assert_eq!(written(&ws)[0].payload, b"plain");
    }

    #[test]
    fn bytes_buffered_by_the_handshake_are_read_first() {
        let mut buffered = cf(true, OpCode::Text, b"first");
        let second = buffered.split_off(3);
        let mock = Mock {
            input: Cursor::new(second),
            output: Vec::new(),
        };
        let mut ws =
            WebSocket::from_upgraded(mock, Role::Server, WsConfig::default(), None, buffered);
        assert_eq!(ws.read_message().unwrap(), Message::Text("first".into()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn any_bytes_give_messages_or_a_clean_error_never_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let config = WsConfig { max_frame_size: 200, max_message_size: 300, ..WsConfig::default() };
            let mut ws = server_with(bytes, config);
            for _ in 0..400 {
                match ws.read_message() {
                    Ok(Message::Close(_)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        proptest::prop_assert!(matches!(
                            e.kind(),
                            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                        ), "{e}");
                        break;
                    }
                }
            }
            // Whatever happened, everything the server wrote is well-formed frames.
            written(&ws);
        }

        #[test]
        fn a_message_split_into_any_fragments_with_pings_between_arrives_whole(
            text in "\\PC{0,60}",
            cuts in proptest::collection::vec(0usize..240, 0..5),
        ) {
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort();
            cuts.push(bytes.len());
            let mut input = Vec::new();
            let mut start = 0;
            for (i, &c) in cuts.iter().enumerate() {
                let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
                input.extend(cf(i + 1 == cuts.len(), op, &bytes[start..c]));
                input.extend(cf(true, OpCode::Ping, &[i as u8]));
                start = c;
            }
            let mut ws = server(input);
            proptest::prop_assert_eq!(ws.read_message().unwrap(), Message::Text(text.clone()));
            let pongs = written(&ws).iter().filter(|f| f.opcode == OpCode::Pong).count();
            // Every ping before the last fragment was answered; the last one is read later.
            proptest::prop_assert_eq!(pongs, cuts.len() - 1);
        }
    }
}
