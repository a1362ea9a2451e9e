//! Deterministic, parallel gzip (pack spec v1, "compression").
//!
//! The input is cut into fixed [`BLOCK_SIZE`] blocks. Each block is deflated on
//! its own (no shared dictionary) by `miniz_oxide` at [`LEVEL`]; every block but
//! the last ends with a sync flush (an empty stored block), the last with the
//! final-block bit. The blocks concatenate into one valid deflate stream inside a
//! gzip member whose header has no name, mtime 0, XFL 0 and OS 255. Because the
//! block boundaries depend only on the input, the bytes are identical whatever
//! the number of threads, and memory is bounded by the blocks in flight.
//!
//! Each block starts on a byte boundary and needs nothing before it, so
//! with the compressed length of every block (what [`GzWriter`] records,
//! and a manifest carries as `artifact.blocks`) [`ParallelGunzip`] inflates
//! them on every core at once and hands the bytes on in order.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::thread;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per independently compressed block.
pub const BLOCK_SIZE: usize = 1 << 20;
/// The deflate level. Part of the pack spec: changing it changes every artifact.
/// Level 3 is ~4× faster than level 6 in miniz_oxide for 2–12% larger output
/// (measured on source-like text and mixed binaries; see `cargo xtask bench pack`).
pub const LEVEL: u32 = 3;

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Done {
    index: u64,
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// A `Write` that gzips into `inner`. Call [`GzWriter::finish`]: dropping it
/// without finishing leaves a truncated stream.
pub struct GzWriter<W: Write> {
    inner: W,
    block: Vec<u8>,
    next_index: u64,
    next_to_write: u64,
    pending: BTreeMap<u64, Done>,
    crc: crc32fast::Hasher,
    total_in: u64,
    pool: Option<Pool>,
    /// The compressed length of each block written so far.
    blocks: Vec<u64>,
}

struct Pool {
    jobs: Option<mpsc::SyncSender<(u64, Vec<u8>, bool)>>,
    done: mpsc::Receiver<io::Result<Done>>,
    workers: Vec<thread::JoinHandle<()>>,
    max_in_flight: u64,
}

impl<W: Write> GzWriter<W> {
    /// `threads` compressing threads; 1 compresses on the caller's thread.
    pub fn new(mut inner: W, threads: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        let pool = (threads > 1).then(|| Pool::start(threads));
        Ok(GzWriter {
            inner,
            block: Vec::with_capacity(BLOCK_SIZE),
            next_index: 0,
            next_to_write: 0,
            pending: BTreeMap::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            pool,
            blocks: Vec::new(),
        })
    }

    /// Flushes the last block and the gzip trailer; returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        Ok(self.finish_indexed()?.0)
    }

    /// [`GzWriter::finish`], with the compressed length of every block, in
    /// order (they start after the 10-byte header).
    pub fn finish_indexed(mut self) -> io::Result<(W, Vec<u64>)> {
        let last = std::mem::take(&mut self.block);
        self.submit(last, true)?;
        if let Some(pool) = &mut self.pool {
            pool.jobs = None;
        }
        while self.next_to_write < self.next_index {
            self.wait_one()?;
        }
        if let Some(pool) = self.pool.take() {
            for w in pool.workers {
                let _ = w.join();
            }
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner
            .write_all(&(self.total_in as u32).to_le_bytes())?;
        Ok((self.inner, self.blocks))
    }

    fn submit(&mut self, block: Vec<u8>, last: bool) -> io::Result<()> {
        let index = self.next_index;
        self.next_index += 1;
        let Some(max_in_flight) = self.pool.as_ref().map(|p| p.max_in_flight) else {
            let done = compress_block(index, &block, last)?;
            return self.accept(done);
        };
        while self.next_index - self.next_to_write > max_in_flight {
            self.wait_one()?;
        }
        let pool = self.pool.as_ref().expect("pool checked above");
        let sent = pool.jobs.as_ref().map(|tx| tx.send((index, block, last)));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::other("gzip worker threads stopped")),
        }
    }

    fn wait_one(&mut self) -> io::Result<()> {
        let pool = self.pool.as_ref().expect("only called with a pool");
        let done = pool
            .done
            .recv()
            .map_err(|_| io::Error::other("gzip worker threads stopped"))??;
        self.accept(done)
    }

    fn accept(&mut self, done: Done) -> io::Result<()> {
        self.pending.insert(done.index, done);
        while let Some(done) = self.pending.remove(&self.next_to_write) {
            self.inner.write_all(&done.bytes)?;
            self.blocks.push(done.bytes.len() as u64);
            self.crc.combine(&done.crc);
            self.next_to_write += 1;
        }
        Ok(())
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            if self.block.len() == BLOCK_SIZE {
                // A full block is only sent once more input exists, so the
                // final block is always known to be final.
                let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
                self.submit(full, false)?;
            }
            let take = buf.len().min(BLOCK_SIZE - self.block.len());
            self.block.extend_from_slice(&buf[..take]);
            self.total_in += take as u64;
            buf = &buf[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pool {
    fn start(threads: usize) -> Pool {
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<(u64, Vec<u8>, bool)>(threads);
        let (done_tx, done_rx) = mpsc::channel();
        let jobs_rx = std::sync::Arc::new(std::sync::Mutex::new(jobs_rx));
        let workers = (0..threads)
            .map(|_| {
                let jobs = jobs_rx.clone();
                let done = done_tx.clone();
                thread::spawn(move || loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((index, block, last)) = job else {
                        return;
                    };
                    if done.send(compress_block(index, &block, last)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs_tx),
            done: done_rx,
            workers,
            max_in_flight: 2 * threads as u64,
        }
    }
}

fn compress_block(index: u64, input: &[u8], last: bool) -> io::Result<Done> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    let mut c = Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == input.len();
        match status {
            Status::StreamEnd => break,
            // Sync flush is complete once all input is in and there is spare
            // room left in the output (the flush did not stop for lack of it).
            Status::Ok | Status::BufError if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(Done {
        index,
        bytes: out,
        crc,
    })
}

/// One inflated block: its index, bytes and their CRC.
type Inflated = (u64, Vec<u8>, crc32fast::Hasher);

/// Waits until the file holds the given number of bytes (a download still
/// writing it), or says why it never will.
pub type Available = std::sync::Arc<dyn Fn(u64) -> io::Result<()> + Send + Sync>;

/// A `Read` of what a gzip file of [`GzWriter`]'s making holds, its blocks
/// (compressed lengths `blocks`) inflated on `threads` threads at once,
/// at most two per thread ahead of the reader. The header, every block's
/// length and the trailer's CRC and size are checked; anything else is an
/// `InvalidData` error.
pub struct ParallelGunzip {
    file: std::sync::Arc<std::fs::File>,
    available: Available,
    /// Where each block starts, and the trailer after the last.
    starts: Vec<u64>,
    jobs: Option<mpsc::SyncSender<(u64, u64, u64)>>,
    done: mpsc::Receiver<io::Result<Inflated>>,
    workers: Vec<thread::JoinHandle<()>>,
    next_job: u64,
    next: u64,
    pending: BTreeMap<u64, (Vec<u8>, crc32fast::Hasher)>,
    current: Vec<u8>,
    pos: usize,
    crc: crc32fast::Hasher,
    total: u64,
    max_in_flight: u64,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl ParallelGunzip {
    /// Checks that `blocks` and the header and trailer account for every
    /// byte of `file`, and starts the workers.
    pub fn new(file: std::fs::File, blocks: &[u64], threads: usize) -> io::Result<Self> {
        let size = file.metadata()?.len();
        let available: Available = std::sync::Arc::new(move |end| match end <= size {
            true => Ok(()),
            false => Err(invalid(format!(
                "the file ends at byte {size}, before {end}"
            ))),
        });
        Self::growing(file, (blocks, size), threads, available)
    }

    /// [`ParallelGunzip::new`] of a file still being written, to `size`
    /// bytes: each read first waits for `available` to say its bytes are
    /// there, so blocks inflate while the rest downloads.
    pub fn growing(
        file: std::fs::File,
        (blocks, size): (&[u64], u64),
        threads: usize,
        available: Available,
    ) -> io::Result<Self> {
        use std::os::unix::fs::FileExt;
        let mut starts = Vec::with_capacity(blocks.len() + 1);
        let mut at = HEADER.len() as u64;
        for b in blocks {
            starts.push(at);
            at = at
                .checked_add(*b)
                .ok_or_else(|| invalid("block lengths overflow".into()))?;
        }
        starts.push(at);
        if blocks.is_empty() || at.checked_add(8) != Some(size) {
            return Err(invalid(format!(
                "the block index ({} blocks, {at} bytes with the header) does not account for the {size} bytes of the file",
                blocks.len()
            )));
        }
        let mut header = [0u8; 10];
        available(header.len() as u64)?;
        file.read_exact_at(&mut header, 0)?;
        if header != HEADER {
            return Err(invalid(
                "not a gzip file of pack spec v1 (its header differs)".into(),
            ));
        }
        let file = std::sync::Arc::new(file);
        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<(u64, u64, u64)>(2 * threads);
        let (done_tx, done_rx) = mpsc::channel();
        let jobs_rx = std::sync::Arc::new(std::sync::Mutex::new(jobs_rx));
        let last = blocks.len() as u64 - 1;
        let workers = (0..threads)
            .map(|_| {
                let (jobs, done, file) = (jobs_rx.clone(), done_tx.clone(), file.clone());
                let available = available.clone();
                thread::spawn(move || loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((index, start, len)) = job else {
                        return;
                    };
                    let inflated = available(start + len)
                        .and_then(|()| inflate_block(&file, start, len, index == last))
                        .map(|(bytes, crc)| (index, bytes, crc));
                    if done.send(inflated).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Ok(ParallelGunzip {
            file,
            available,
            starts,
            jobs: Some(jobs_tx),
            done: done_rx,
            workers,
            next_job: 0,
            next: 0,
            pending: BTreeMap::new(),
            current: Vec::new(),
            pos: 0,
            crc: crc32fast::Hasher::new(),
            total: 0,
            max_in_flight: 2 * threads as u64,
        })
    }

    fn blocks(&self) -> u64 {
        self.starts.len() as u64 - 1
    }

    /// The next block in order, `None` after the last (trailer checked).
    fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        if self.next == self.blocks() {
            return Ok(None);
        }
        while self.next_job < self.blocks() && self.next_job - self.next < self.max_in_flight {
            let i = self.next_job as usize;
            let job = (
                self.next_job,
                self.starts[i],
                self.starts[i + 1] - self.starts[i],
            );
            let sent = self.jobs.as_ref().map(|tx| tx.send(job));
            if !matches!(sent, Some(Ok(()))) {
                return Err(io::Error::other("gunzip worker threads stopped"));
            }
            self.next_job += 1;
        }
        let (bytes, crc) = loop {
            if let Some(b) = self.pending.remove(&self.next) {
                break b;
            }
            let (i, bytes, crc) = self
                .done
                .recv()
                .map_err(|_| io::Error::other("gunzip worker threads stopped"))??;
            self.pending.insert(i, (bytes, crc));
        };
        self.next += 1;
        self.crc.combine(&crc);
        self.total += bytes.len() as u64;
        if self.next == self.blocks() {
            let mut trailer = [0u8; 8];
            let at = *self.starts.last().unwrap_or(&0);
            (self.available)(at + 8)?;
            self.file.read_exact_at(&mut trailer, at)?;
            let crc = u32::from_le_bytes(trailer[..4].try_into().unwrap_or_default());
            let size = u32::from_le_bytes(trailer[4..].try_into().unwrap_or_default());
            let ours = std::mem::take(&mut self.crc).finalize();
            if crc != ours || size != self.total as u32 {
                return Err(invalid(format!(
                    "the gzip trailer says crc {crc:08x} and {size} bytes, the blocks gave {ours:08x} and {}",
                    self.total as u32
                )));
            }
        }
        Ok(Some(bytes))
    }
}

impl io::Read for ParallelGunzip {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.next_block()? {
                Some(bytes) => (self.current, self.pos) = (bytes, 0),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ParallelGunzip {
    fn drop(&mut self) {
        self.jobs = None;
        // Workers end at their next job; the results left are dropped.
        while self.done.try_recv().is_ok() {}
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The bytes that end a deflate stream after a sync flush: an empty final
/// block with fixed codes (BFINAL 1, BTYPE 01, end-of-block), byte aligned.
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// Inflates the block of `len` bytes at `start`: exactly [`BLOCK_SIZE`]
/// bytes ending in a sync flush, or, for the `last`, at most that many,
/// ending the deflate stream.
///
/// zlib-rs inflates a whole block in one call, about 2.4× faster than
/// miniz_oxide's streaming inflate (`cargo xtask bench fetch`). Any
/// correct inflater gives the same bytes, so only the deflate side is
/// pinned by the pack spec. A block that is not the last is ended with
/// [`FINAL_EMPTY_BLOCK`] first, so that every block must end its stream
/// exactly where its input ends.
fn inflate_block(
    file: &std::fs::File,
    start: u64,
    len: u64,
    last: bool,
) -> io::Result<(Vec<u8>, crc32fast::Hasher)> {
    use std::os::unix::fs::FileExt;
    let len = usize::try_from(len).map_err(|_| invalid("block too large".into()))?;
    let mut input = vec![0u8; len + FINAL_EMPTY_BLOCK.len()];
    file.read_exact_at(&mut input[..len], start)?;
    if last {
        input.truncate(len);
    } else {
        input[len..].copy_from_slice(&FINAL_EMPTY_BLOCK);
    }
    // One byte of room past a block: a block that fills it is too long.
    let mut out: Vec<u8> = Vec::with_capacity(BLOCK_SIZE + 1);
    let mut d = zlib_rs::Inflate::new(false, 15);
    let status = d.decompress_uninit(
        &input,
        out.spare_capacity_mut(),
        zlib_rs::InflateFlush::Finish,
    );
    let n = usize::try_from(d.total_out())
        .unwrap_or(usize::MAX)
        .min(out.capacity());
    // SAFETY: the inflater initialised the first `total_out` bytes of the
    // spare capacity it was given, and never more than it was given.
    unsafe { out.set_len(n) };
    let ended = matches!(status, Ok(zlib_rs::Status::StreamEnd));
    let right_size = n == BLOCK_SIZE || (last && n < BLOCK_SIZE);
    if !ended || d.total_in() != input.len() as u64 || !right_size {
        return Err(invalid(format!(
            "block at byte {start} ({len} bytes) inflates to {n} bytes{}: the block index does not match the file",
            match status {
                Ok(zlib_rs::Status::StreamEnd) => String::new(),
                Ok(_) => ", not ending where it ends".into(),
                Err(e) => format!(" ({e:?})"),
            }
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    Ok((out, crc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    b"abcdefgh"[(x % 8) as usize]
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut w = GzWriter::new(Vec::new(), threads).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_through_a_standard_decoder() {
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE + 17,
        ] {
            let data = sample(len);
            let out = gz(&data, 3, 100_000);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "length {len}");
            assert_eq!(&out[..10], &HEADER);
        }
    }

    #[test]
    fn blocks_inflate_in_parallel_to_the_same_bytes_and_a_wrong_index_is_refused() {
        use std::io::Write as _;
        for len in [1, BLOCK_SIZE, BLOCK_SIZE + 1, 5 * BLOCK_SIZE + 17] {
            let data = sample(len);
            let mut w = GzWriter::new(Vec::new(), 2).unwrap();
            w.write_all(&data).unwrap();
            let (out, blocks) = w.finish_indexed().unwrap();
            assert_eq!(blocks.len(), len.div_ceil(BLOCK_SIZE), "length {len}");
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&out).unwrap();
            for threads in [1, 3] {
                let file = f.try_clone().unwrap();
                let mut back = Vec::new();
                ParallelGunzip::new(file, &blocks, threads)
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert!(back == data, "length {len}, {threads} threads");
            }
            if blocks.len() > 1 {
                // Lengths that still add up, but cut a block elsewhere.
                let mut wrong = blocks.clone();
                wrong[0] += 1;
                wrong[1] -= 1;
                let mut back = Vec::new();
                let e = ParallelGunzip::new(f.try_clone().unwrap(), &wrong, 2)
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            }
            let e = ParallelGunzip::new(f.try_clone().unwrap(), &blocks[1..], 2);
            assert!(e.is_err() || blocks.len() == 1);
        }
        // A flipped byte in a block's data: an error, never other bytes.
        let data = sample(3 * BLOCK_SIZE);
        let mut w = GzWriter::new(Vec::new(), 2).unwrap();
        w.write_all(&data).unwrap();
        let (mut out, blocks) = w.finish_indexed().unwrap();
        out[10 + blocks[0] as usize + 100] ^= 0x55;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&out).unwrap();
        let mut back = Vec::new();
        let r = ParallelGunzip::new(f, &blocks, 2)
            .unwrap()
            .read_to_end(&mut back);
        assert!(r.is_err(), "a corrupt block was inflated without an error");
    }

    #[test]
    fn a_block_that_is_not_the_last_but_ends_the_stream_is_refused() {
        use std::io::Write as _;
        // Raw deflate streams, each ended by a final block: what a forged
        // artifact could hold in place of a block ending in a sync flush.
        let ended = |data: &[u8]| {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(3));
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let data = sample(2 * BLOCK_SIZE);
        // A first block of the full size, and one a byte short: a standard
        // decoder would stop at either; the index says more follows.
        for first in [BLOCK_SIZE, BLOCK_SIZE - 1] {
            let (a, b) = (ended(&data[..first]), ended(&data[first..]));
            let mut out = HEADER.to_vec();
            out.extend_from_slice(&a);
            out.extend_from_slice(&b);
            out.extend_from_slice(&crc32fast::hash(&data).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&out).unwrap();
            let blocks = [a.len() as u64, b.len() as u64];
            let mut back = Vec::new();
            let e = ParallelGunzip::new(f, &blocks, 2)
                .unwrap()
                .read_to_end(&mut back)
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            assert!(
                e.to_string().contains("the block index does not match"),
                "{e}"
            );
            assert!(back.is_empty(), "first block {first}: bytes came out");
        }
    }

    #[test]
    fn bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = sample(2 * BLOCK_SIZE + 12345);
        let reference = gz(&data, 1, data.len());
        for (threads, chunk) in [(1, 7), (2, 4096), (4, 65536), (8, BLOCK_SIZE)] {
            assert_eq!(gz(&data, threads, chunk), reference, "{threads} threads");
        }
    }
}
