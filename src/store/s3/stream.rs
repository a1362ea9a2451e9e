//! Reading a large object: a blocking [`Read`] over the SDK's async body
//! stream, so `get` hands back a reader without holding the object in
//! memory, and a server that stops sending is a timeout, not a hang.

use std::io::{self, Read};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;

/// A blocking `Read` over the SDK's async body stream.
pub(super) struct StreamReader {
    handle: tokio::runtime::Handle,
    stream: ByteStream,
    /// The longest wait for the next chunk.
    timeout: Duration,
    /// The last chunk received and how much of it was read.
    chunk: Vec<u8>,
    pos: usize,
}

impl StreamReader {
    /// A reader of `stream`, blocking on `handle`, waiting at most
    /// `timeout` for each chunk.
    pub(super) fn new(
        handle: tokio::runtime::Handle,
        stream: ByteStream,
        timeout: Duration,
    ) -> StreamReader {
        StreamReader {
            handle,
            stream,
            timeout,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            let next = self
                .handle
                .block_on(async { tokio::time::timeout(self.timeout, self.stream.next()).await })
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the server sent nothing for {} s", self.timeout.as_secs()),
                    )
                })?;
            match next {
                Some(Ok(bytes)) => {
                    self.chunk = bytes.to_vec();
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
