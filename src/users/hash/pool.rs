//! Dedicated hashing threads at a lower CPU priority.
//!
//! argon2 is pure CPU work. On tokio's blocking pool it would compete as an equal with the
//! threads serving proxied requests, so a login flood on a small machine would double their
//! latency. These threads lower their own scheduling priority (nice 10) once at start: when
//! the CPUs are busy, proxied traffic goes first and logins wait, which is the right order
//! for a gateway.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// A unit of hashing work.
pub(super) type Job = Box<dyn FnOnce() + Send + 'static>;

/// The sending side of the pool; dropping it stops the threads once their queue is empty.
pub(super) struct Pool {
    jobs: Mutex<Sender<Job>>,
}

impl Pool {
    /// Starts `workers` threads.
    pub(super) fn start(workers: usize) -> Pool {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("portcullis-hash-{index}"))
                .spawn(move || work(&receiver));
            if let Err(err) = spawned {
                tracing::error!(error = %err, "cannot start a password hashing thread");
            }
        }
        Pool {
            jobs: Mutex::new(sender),
        }
    }

    /// Queues a job; false when no thread is left to run it.
    pub(super) fn submit(&self, job: Job) -> bool {
        match self.jobs.lock() {
            Ok(sender) => sender.send(job).is_ok(),
            Err(_) => false,
        }
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Raises this thread's nice value; Linux applies it to the calling thread only.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority has no memory-safety preconditions; who = 0 is this thread.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        if result != 0 {
            tracing::debug!("cannot lower the priority of a hashing thread");
        }
    }
}
