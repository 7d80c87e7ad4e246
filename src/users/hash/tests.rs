use super::*;
use std::time::{Duration, Instant};

fn cheap() -> Hasher {
    Hasher::with_params(2, 4, 1024, 1, 1)
}

/// Polls `cond` until it holds or a generous deadline passes.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test]
async fn hash_then_verify_roundtrips() {
    let h = cheap();
    let phc = h.hash("correct horse battery").await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
    let right = h.verify(&phc, "correct horse battery").await.unwrap();
    assert_eq!(
        right,
        Verified {
            ok: true,
            needs_rehash: false
        }
    );
    let wrong = h.verify(&phc, "correct horse battery!").await.unwrap();
    assert_eq!(
        wrong,
        Verified {
            ok: false,
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn same_password_gets_a_fresh_salt_each_time() {
    let h = cheap();
    assert_ne!(h.hash("pw").await.unwrap(), h.hash("pw").await.unwrap());
}

#[tokio::test]
async fn hash_with_weaker_params_needs_rehash_once_verified() {
    let weak = cheap().hash("correct horse battery").await.unwrap();
    let stronger = Hasher::with_params(1, 1, 2048, 1, 1);
    let v = stronger
        .verify(&weak, "correct horse battery")
        .await
        .unwrap();
    assert_eq!(
        v,
        Verified {
            ok: true,
            needs_rehash: true
        }
    );
    // A wrong password never asks for a rehash: there is nothing to rehash with.
    let v = stronger.verify(&weak, "wrong password!!").await.unwrap();
    assert_eq!(
        v,
        Verified {
            ok: false,
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn argon2i_hash_needs_rehash_to_argon2id() {
    let salt = SaltString::generate(&mut OsRng);
    let params = clamped_params(1024, 1, 1);
    let phc = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
        .hash_password(b"correct horse battery", &salt)
        .unwrap()
        .to_string();
    let v = cheap().verify(&phc, "correct horse battery").await.unwrap();
    assert_eq!(
        v,
        Verified {
            ok: true,
            needs_rehash: true
        }
    );
}

#[tokio::test]
async fn unparseable_stored_hash_is_bad_hash() {
    for bad in [
        "",
        "plaintext",
        "$scrypt$ln=16,r=8,p=1$aaaa$bbbb",
        "$argon2id$v=19$m=x$a$b",
    ] {
        assert!(
            matches!(cheap().verify(bad, "pw").await, Err(HashError::BadHash)),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn dummy_verification_completes_for_any_password() {
    let h = cheap();
    h.verify_dummy("whatever").await.unwrap();
    h.verify_dummy("").await.unwrap();
}

#[test]
fn dummy_hash_carries_the_configured_params() {
    let h = Hasher::new(1, 1);
    assert!(h.inner.dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(is_valid_phc(&h.inner.dummy));
}

#[tokio::test]
async fn full_queue_answers_busy_at_once() {
    let h = Hasher::with_params(1, 0, 1024, 1, 1);
    let held = Arc::clone(&h.inner.admit).try_acquire_owned().unwrap();
    assert!(matches!(h.hash("pw").await, Err(HashError::Busy)));
    assert!(matches!(h.verify_dummy("pw").await, Err(HashError::Busy)));
    drop(held);
    h.hash("pw").await.unwrap();
}

#[tokio::test]
async fn callers_beyond_workers_plus_queue_are_refused_while_earlier_ones_wait() {
    let h = Hasher::with_params(1, 1, 1024, 1, 1);
    // Stand in for a hash in progress: one admission and the only worker.
    let admitted = Arc::clone(&h.inner.admit).try_acquire_owned().unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    assert!(h.inner.pool.submit(Box::new(move || {
        let _ = wait.recv();
    })));
    let queued = tokio::spawn({
        let h = h.clone();
        async move { h.hash("pw").await }
    });
    assert!(eventually(|| h.inner.admit.available_permits() == 0).await);
    assert!(matches!(h.hash("pw").await, Err(HashError::Busy)));
    drop((admitted, release));
    assert!(queued.await.unwrap().is_ok());
    assert!(eventually(|| h.inner.admit.available_permits() == 2).await);
}

#[tokio::test]
async fn flood_of_concurrent_logins_gets_some_busy_answers() {
    let h = Hasher::with_params(1, 0, 1024, 1, 1);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let h = h.clone();
        set.spawn(async move { h.verify_dummy("pw").await });
    }
    let results = set.join_all().await;
    assert!(results.iter().any(|r| matches!(r, Err(HashError::Busy))));
    assert!(results.iter().any(|r| r.is_ok()));
}

#[test]
fn blocking_hash_uses_owasp_params_and_verifies() {
    let phc = hash_blocking("correct horse battery").unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(is_valid_phc(&phc));
}

#[test]
fn invalid_costs_are_raised_to_argon2_minimums() {
    let h = Hasher::with_params(0, 0, 0, 0, 0);
    assert_eq!(h.inner.workers, 1);
    assert_eq!(h.inner.params.t_cost(), 1);
    assert_eq!(h.inner.params.p_cost(), 1);
    assert!(h.inner.params.m_cost() >= 8);
}

#[test]
fn debug_shows_costs_but_not_the_dummy_hash() {
    let h = Hasher::new(2, 8);
    let dbg = format!("{h:?}");
    assert!(dbg.contains("m_kib: 19456"), "{dbg}");
    assert!(!dbg.contains("$argon2"), "{dbg}");
}
