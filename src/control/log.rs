//! The log's writer: a worker hands its formatted line to a bounded buffer and goes on; one
//! thread writes the buffer out in batches. A worker never waits on stderr (a slow disk, a
//! full pipe, a stalled journald), and a line that does not fit is counted, never lost
//! silently: `portcullis_log_lines_dropped_total`, and a warning once the writer catches up.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// Bytes of formatted lines held for the writer at most (about 8,000 access lines): a
/// stall of the log's reader this long at full load is absorbed, a longer one drops lines.
pub const QUEUE_BYTES: usize = 2 << 20;

/// How long the writer lets a batch gather after the first line arrives: at most one write
/// per this interval (or per half a queue) however many lines come in.
const LINGER: Duration = Duration::from_millis(5);

/// How long the shutdown waits for the last batch to be written: a log reader that takes
/// nothing more must not hold the process up for ever.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// A batch buffer larger than this after a burst is given back.
const KEEP_CAPACITY: usize = 64 << 10;

/// The writer installed for the process, and whether its lines are plain text.
static INSTALLED: OnceLock<(LogWriter, bool)> = OnceLock::new();

/// Lines the process's log writer has dropped so far (0 when none is installed).
pub fn dropped_lines() -> u64 {
    INSTALLED.get().map_or(0, |(writer, _)| writer.dropped())
}

/// The process's writer when its subscriber writes the plain text format, so that a line
/// formatted as that format does can be queued without the subscriber.
pub fn text_writer() -> Option<&'static LogWriter> {
    match INSTALLED.get() {
        Some((writer, true)) => Some(writer),
        _ => None,
    }
}

/// Where formatted lines go: cheap to clone, given to the tracing subscriber.
#[derive(Clone, Debug)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// The writer thread waits on it for lines, or for a batch to fill.
    wake: Condvar,
    dropped: AtomicU64,
    limit: usize,
}

#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    /// The writer waits for a first line: the next one must wake it.
    parked: bool,
    /// The writer lets a batch gather: a line that fills half the queue wakes it early.
    lingering: bool,
    /// Shutdown: the writer writes what is left and ends.
    closing: bool,
}

/// Ends the writer thread once everything logged before is written; on drop.
#[derive(Debug)]
pub struct Flush {
    shared: Arc<Shared>,
    done: mpsc::Receiver<()>,
}

impl LogWriter {
    /// Starts the writer thread over `sink`, holding at most `limit` bytes of lines.
    pub fn spawn<W: Write + Send + 'static>(sink: W, limit: usize) -> io::Result<(Self, Flush)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            limit,
        });
        let (finished, done) = mpsc::channel();
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("portcullis-log".into())
            .spawn(move || {
                write_batches(&thread, sink);
                drop(finished);
            })?;
        let flush = Flush {
            shared: shared.clone(),
            done,
        };
        Ok((LogWriter { shared }, flush))
    }

    /// Makes this the writer whose drops `dropped_lines` reports; `plain_text`: its
    /// subscriber writes the default text format without colours (see `text_writer`).
    pub fn install(&self, plain_text: bool) {
        let _ = INSTALLED.set((self.clone(), plain_text));
    }

    /// Queues one whole line (ending in a newline), or counts it dropped; never waits.
    pub fn write_line(&self, line: &[u8]) {
        let _ = Line(&self.shared).write(line);
    }

    /// Lines dropped so far: the queue was full, the writer had stopped, or the sink failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.shared)
    }
}

/// One event's output: the subscriber hands over the whole formatted line in one write.
#[derive(Debug)]
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = self.0;
        let mut state = shared.lock();
        let before = state.pending.len();
        if state.closing || before + line.len() > shared.limit {
            drop(state);
            shared.dropped.fetch_add(1, Relaxed);
            // Reported as written: a logging call has no one to hand an error to.
            return Ok(line.len());
        }
        state.pending.extend_from_slice(line);
        let half = shared.limit / 2;
        let wake =
            state.parked || (state.lingering && before < half && before + line.len() >= half);
        if wake {
            state.parked = false;
            state.lingering = false;
        }
        drop(state);
        if wake {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    /// The state; a panic elsewhere while holding it leaves nothing half-done worth refusing.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a first line, lets a batch gather, and takes it; None once closing and empty.
    fn next_batch(&self, batch: &mut Vec<u8>) -> Option<()> {
        let mut state = self.lock();
        while state.pending.is_empty() && !state.closing {
            state.parked = true;
            state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.parked = false;
        if !state.closing && state.pending.len() < self.limit / 2 {
            state.lingering = true;
            state = self
                .wake
                .wait_timeout(state, LINGER)
                .map_or_else(|p| p.into_inner().0, |(state, _)| state);
            state.lingering = false;
        }
        if state.closing && state.pending.is_empty() {
            return None;
        }
        std::mem::swap(&mut state.pending, batch);
        Some(())
    }
}

/// The writer thread: batch after batch until shutdown has written the last one.
fn write_batches<W: Write>(shared: &Shared, mut sink: W) {
    let mut batch = Vec::new();
    let mut reported = 0;
    while shared.next_batch(&mut batch).is_some() {
        if sink.write_all(&batch).and_then(|()| sink.flush()).is_err() {
            let lines = batch.iter().filter(|b| **b == b'\n').count();
            shared.dropped.fetch_add(lines as u64, Relaxed);
        }
        batch.clear();
        batch.shrink_to(KEEP_CAPACITY);
        let dropped = shared.dropped.load(Relaxed);
        if dropped > reported {
            // Through the subscriber, so that it reads as the other lines do (text or JSON);
            // it arrives with the next batch.
            tracing::warn!(
                dropped = dropped - reported,
                "log lines dropped: the log's reader fell behind (portcullis_log_lines_dropped_total)"
            );
            // This warning itself may not have fitted: counted, but not warned about again.
            reported = shared.dropped.load(Relaxed);
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        // The thread ends after its last write (or the channel's sender is dropped with it).
        let _ = self.done.recv_timeout(FLUSH_DEADLINE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that keeps what it is given, and can be held shut to stand for a stalled reader.
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
        shut: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Sink {
        fn set_shut(&self, shut: bool) {
            *self.shut.0.lock().unwrap() = shut;
            self.shut.1.notify_all();
        }
        fn lines(&self) -> Vec<String> {
            let written = self.written.lock().unwrap();
            String::from_utf8_lossy(&written)
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let mut shut = self.shut.0.lock().unwrap();
            while *shut {
                shut = self.shut.1.wait(shut).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(writer: &LogWriter, line: &str) {
        use tracing_subscriber::fmt::MakeWriter;
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_flush_returns() {
        let sink = Sink::default();
        let (writer, flush) = LogWriter::spawn(sink.clone(), QUEUE_BYTES).unwrap();
        for n in 0..1000 {
            log(&writer, &format!("line {n}\n"));
        }
        drop(flush);
        let expected: Vec<String> = (0..1000).map(|n| format!("line {n}")).collect();
        assert_eq!(sink.lines(), expected);
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn a_stalled_reader_never_blocks_a_writer_and_every_line_not_written_is_counted() {
        let sink = Sink::default();
        sink.set_shut(true);
        let (writer, flush) = LogWriter::spawn(sink.clone(), 1000).unwrap();
        // 100 lines of 100 bytes: whatever the writer thread took before the sink stalled, the
        // queue holds only 10 of them, so most are dropped; none of these calls waits.
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..100 {
            log(&writer, &line);
        }
        let dropped = writer.dropped();
        assert!(dropped >= 80, "{dropped} dropped");
        sink.set_shut(false);
        drop(flush);
        assert_eq!(sink.lines().len() as u64 + dropped, 100);
    }

    #[test]
    fn lines_after_the_flush_are_counted_as_dropped() {
        let sink = Sink::default();
        let (writer, flush) = LogWriter::spawn(sink.clone(), QUEUE_BYTES).unwrap();
        log(&writer, "before\n");
        drop(flush);
        log(&writer, "after\n");
        assert_eq!(sink.lines(), ["before"]);
        assert_eq!(writer.dropped(), 1);
    }
}
