//! argon2id hashing on a bounded pool, off the async workers.
//!
//! A hash costs ~19 MiB and tens of milliseconds of CPU, so it runs on `workers` dedicated
//! low-priority threads (see `pool`) behind a semaphore, `admit`, that bounds how many calls
//! may be running or waiting at all: beyond that the caller gets `Busy` at once, so a login
//! flood cannot pile up unbounded work or memory.

mod pool;

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// OWASP's argon2id recommendation: 19 MiB of memory.
pub const OWASP_M_KIB: u32 = 19 * 1024;
/// OWASP's argon2id recommendation: two passes.
pub const OWASP_T: u32 = 2;
/// OWASP's argon2id recommendation: one lane.
pub const OWASP_P: u32 = 1;

/// Why a hash or verification did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full.
    #[error("too many password hashes in progress")]
    Busy,
    /// The stored hash is not an argon2 PHC string this build can verify.
    #[error("stored password hash is not a valid argon2 PHC string")]
    BadHash,
    /// The hashing task failed (panicked or was cancelled at shutdown).
    #[error("password hashing failed")]
    Internal,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password matches the hash.
    pub ok: bool,
    /// The password matched a hash made with weaker settings than the configured ones;
    /// the caller should store a fresh hash while it still has the password.
    pub needs_rehash: bool,
}

/// A bounded pool of argon2id workers; cheap to clone, clones share the pool.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    admit: Arc<Semaphore>,
    pool: pool::Pool,
    workers: usize,
    queue: usize,
    params: Params,
    /// A well-formed PHC string with the configured params, verified against for unknown
    /// users so they cost the same as known ones. Its output is all zeros: verification
    /// costs one full hash whatever the stored output is, so no real hashing is needed.
    dummy: String,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.inner.params;
        f.debug_struct("Hasher")
            .field("workers", &self.inner.workers)
            .field("queue", &self.inner.queue)
            .field("m_kib", &p.m_cost())
            .field("t", &p.t_cost())
            .field("p", &p.p_cost())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// `workers` hashes at once, at most `queue` more waiting, OWASP argon2id parameters.
    pub fn new(workers: usize, queue: usize) -> Hasher {
        Hasher::with_params(workers, queue, OWASP_M_KIB, OWASP_T, OWASP_P)
    }

    /// A pool with explicit argon2id costs; tests use cheap ones (m=1024, t=1, p=1).
    /// Out-of-range costs are raised to argon2's minimums, and `workers` to at least 1,
    /// rather than failing: a pool with no workers would hang every login.
    pub fn with_params(workers: usize, queue: usize, m_kib: u32, t: u32, p: u32) -> Hasher {
        let params = clamped_params(m_kib, t, p);
        let workers = workers.max(1);
        let dummy = dummy_phc(&params);
        Hasher {
            inner: Arc::new(Inner {
                admit: Arc::new(Semaphore::new(workers.saturating_add(queue))),
                pool: pool::Pool::start(workers),
                workers,
                queue,
                params,
                dummy,
            }),
        }
    }

    /// Hashes `password` with a fresh random salt into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        let params = self.inner.params.clone();
        self.run_blocking(move || hash_with(&params, &password))
            .await?
    }

    /// Checks `password` against a stored PHC string; see [`Verified`] for `needs_rehash`.
    pub async fn verify(&self, phc: &str, password: &str) -> Result<Verified, HashError> {
        let phc = phc.to_owned();
        let password = password.to_owned();
        let params = self.inner.params.clone();
        self.run_blocking(move || verify_with(&params, &phc, &password))
            .await?
    }

    /// Spends the same work as a real verification and ignores the result, so a login for
    /// an unknown user takes as long as one with a wrong password.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
        let dummy = self.inner.dummy.clone();
        self.verify(&dummy, password).await.map(|_| ())
    }

    /// Runs `work` on the hashing threads once admitted.
    async fn run_blocking<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let admitted: OwnedSemaphorePermit = Arc::clone(&self.inner.admit)
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let (done, result) = tokio::sync::oneshot::channel();
        // The permit moves into the job: if the caller is dropped (client went away), the
        // hash still runs to completion and keeps its slot until it does, so the bound
        // holds for work actually in flight, not just for callers still waiting.
        let job = Box::new(move || {
            let _admitted = admitted;
            let _ = done.send(work());
        });
        if !self.inner.pool.submit(job) {
            return Err(HashError::Internal);
        }
        result.await.map_err(|_| HashError::Internal)
    }
}

/// Hashes with OWASP parameters on the calling thread, for the CLI
/// (`portcullis hash-password`, `portcullis user add`).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    hash_with(&clamped_params(OWASP_M_KIB, OWASP_T, OWASP_P), password)
}

/// True when `phc` is an argon2 PHC string with parameters argon2 accepts; the file
/// store checks this at load so a typo is reported then, not at the user's next login.
pub fn is_valid_phc(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Algorithm::try_from(parsed.algorithm).is_ok()
        && Params::try_from(&parsed).is_ok()
        && parsed.salt.is_some()
        && parsed.hash.is_some()
}

fn clamped_params(m_kib: u32, t: u32, p: u32) -> Params {
    let p = p.clamp(Params::MIN_P_COST, Params::MAX_P_COST);
    let t = t.max(Params::MIN_T_COST);
    // argon2 needs at least 8 KiB per lane.
    let m = m_kib.max(Params::MIN_M_COST).max(p.saturating_mul(8));
    Params::new(m, t, p, None).unwrap_or_default()
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2id(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| HashError::Internal)
}

fn verify_with(params: &Params, phc: &str, password: &str) -> Result<Verified, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::BadHash)?;
    let stored = Params::try_from(&parsed).map_err(|_| HashError::BadHash)?;
    // The verifier takes algorithm, version and costs from the stored hash, so hashes
    // made with older settings keep working until they are upgraded.
    let ok = match argon2id(params).verify_password(password.as_bytes(), &parsed) {
        Ok(()) => true,
        Err(argon2::password_hash::Error::Password) => false,
        Err(_) => return Err(HashError::BadHash),
    };
    let weaker = parsed.algorithm != argon2::ARGON2ID_IDENT
        || parsed.version != Some(Version::V0x13.into())
        || stored.m_cost() < params.m_cost()
        || stored.t_cost() < params.t_cost()
        || stored.p_cost() < params.p_cost();
    Ok(Verified {
        ok,
        needs_rehash: ok && weaker,
    })
}

fn dummy_phc(params: &Params) -> String {
    // 16 zero bytes of salt and 32 of output, base64 without padding.
    let salt = "AAAAAAAAAAAAAAAAAAAAAA";
    let output = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    format!(
        "$argon2id$v=19$m={},t={},p={}${salt}${output}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    )
}

#[cfg(test)]
mod tests;
