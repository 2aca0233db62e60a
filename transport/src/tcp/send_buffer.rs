//! The send side of a connection: bytes the application wrote and the peer has not yet
//! acknowledged, from SND.UNA's first data byte on. The ring is shared: the application
//! appends (its [`Producer`]), the connection reads at offsets to build segments and frees
//! what is acknowledged (its [`Consumer`]).

use super::ring::{ring, Consumer, Producer};

#[derive(Debug)]
pub struct SendBuffer {
    ring: Consumer,
    /// The application's side, while the connection still holds it (sans-IO use, tests).
    writer: Option<Producer>,
    detached: bool,
    /// Where the data ends once a FIN is queued: bytes a racing writer appends later are not
    /// part of the stream.
    frozen_end: Option<usize>,
}

impl SendBuffer {
    pub fn new(capacity: usize) -> Self {
        let (writer, ring) = ring(capacity);
        SendBuffer {
            ring,
            writer: Some(writer),
            detached: false,
            frozen_end: None,
        }
    }

    /// The FIN is queued: the data ends where it ends now.
    pub fn freeze(&mut self) {
        if self.frozen_end.is_none() {
            self.frozen_end = Some(self.ring.end_position());
        }
    }

    /// Hands the writing side to the runtime: the application appends to it directly and
    /// [`write`](Self::write) takes nothing from then on.
    pub fn take_writer(&mut self) -> Option<Producer> {
        self.detached = true;
        self.writer.take()
    }

    pub fn is_detached(&self) -> bool {
        self.detached
    }

    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
    /// Bytes held: unacknowledged plus unsent.
    pub fn len(&self) -> usize {
        match self.frozen_end {
            Some(end) => end.wrapping_sub(self.ring.position()),
            None => self.ring.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn free(&self) -> usize {
        self.capacity() - self.ring.len()
    }

    /// Appends what fits of `data` (sans-IO use); returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        self.writer.as_mut().map_or(0, |w| w.write(data))
    }

    /// Appends `len` bytes from `offset` past SND.UNA's data to `out`.
    pub fn copy_out(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        self.ring.extend_vec(offset, len, out);
    }

    /// Frees `n` acknowledged bytes.
    pub fn consume(&mut self, n: usize) {
        self.ring.consume(n);
    }

    /// Lets go of the memory: the connection sends no more data. A ring whose writer went to
    /// the runtime is freed when the writer drops it.
    pub fn release(&mut self) {
        let (writer, ring) = ring(self.capacity());
        self.ring = ring;
        self.frozen_end = self.frozen_end.map(|_| 0);
        if !self.detached {
            self.writer = Some(writer);
        }
    }
}
