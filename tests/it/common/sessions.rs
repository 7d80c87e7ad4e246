//! Sessions through a Redis failover: a client doing login -> refresh -> logout cycles on
//! two gateways while a test breaks the store, and what each step answered.
//!
//! A 503 is the allowed answer while no master is reachable (`on_error = "deny"`); any
//! other answer but a 2xx (a 500, a connection reset by a panic, no answer within
//! [`STEP_DEADLINE`]) is a fault. Every logout answered 204 is kept, so that the test can
//! check afterwards that its revocation holds on both gateways.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{json, Value};

use super::{eventually, Gateway, RequestBuilder, Response};

/// Longest one step may take: the gateway bounds each Redis call (a write: 500 ms), so a
/// step still unanswered after this hangs.
pub const STEP_DEADLINE: Duration = Duration::from_secs(5);

/// How long a cycle that met a refusal waits before the next (a client honours
/// `Retry-After: 1`; shorter here, to see more of the gap).
const PAUSE: Duration = Duration::from_millis(50);

/// How many faults are kept for the failure message.
const KEPT_FAULTS: usize = 10;

/// What one kind of step answered.
#[derive(Default)]
pub struct Answers {
    pub ok: AtomicU64,
    pub unavailable: AtomicU64,
    pub other: AtomicU64,
}

impl Answers {
    fn figures(&self) -> String {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let (ok, unavailable) = (get(&self.ok), get(&self.unavailable));
        format!("{ok} 2xx, {unavailable} 503, {} other", get(&self.other))
    }
}

/// The cycles' answers, step by step.
#[derive(Default)]
pub struct SessionTally {
    pub login: Answers,
    pub refresh: Answers,
    pub logout: Answers,
    /// The first few answers that were neither 2xx nor 503.
    faults: Mutex<Vec<String>>,
    /// The access token of every logout answered 204.
    logged_out: Mutex<Vec<String>>,
    /// When the first and the last 503 arrived.
    refused: Mutex<Option<(Instant, Instant)>>,
}

impl SessionTally {
    /// Answers that were neither 2xx nor 503, all steps together.
    pub fn faults(&self) -> u64 {
        [&self.login, &self.refresh, &self.logout]
            .iter()
            .map(|a| a.other.load(Ordering::Relaxed))
            .sum()
    }

    /// The first few faults, described.
    pub fn fault_samples(&self) -> Vec<String> {
        self.faults.lock().expect("not poisoned").clone()
    }

    /// The access tokens of the logouts answered 204.
    pub fn logged_out(&self) -> Vec<String> {
        self.logged_out.lock().expect("not poisoned").clone()
    }

    /// One line of figures; the 503s' span counted from `since` (the kill).
    pub fn figures(&self, since: Instant) -> String {
        let span = match *self.refused.lock().expect("not poisoned") {
            Some((first, last)) => format!(
                "503s from {:?} to {:?} after the kill",
                first.saturating_duration_since(since),
                last.saturating_duration_since(since)
            ),
            None => "no 503".to_string(),
        };
        format!(
            "login {}; refresh {}; logout {}; {span}",
            self.login.figures(),
            self.refresh.figures(),
            self.logout.figures()
        )
    }

    /// Until `n` more whole cycles (each logout answered 204) than now have run; two: one
    /// each way between the gateways.
    pub async fn more_cycles(&self, n: u64, within: Duration) -> Result<(), String> {
        let done = self.logout.ok.load(Ordering::Relaxed);
        eventually(within, || async {
            let now = self.logout.ok.load(Ordering::Relaxed);
            (now >= done + n)
                .then_some(())
                .ok_or(format!("no cycle completed: {}", self.logout.figures()))
        })
        .await
    }

    /// Counts `answer` under `step`'s answers; the response when it was a 2xx.
    fn record(&self, step: &Answers, answer: Result<Response, String>) -> Option<Response> {
        let counter = match &answer {
            Ok(resp) if resp.status.is_success() => &step.ok,
            Ok(resp) if resp.status == StatusCode::SERVICE_UNAVAILABLE => {
                let now = Instant::now();
                let mut span = self.refused.lock().expect("not poisoned");
                *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
                &step.unavailable
            }
            Ok(resp) => {
                self.fault(format!("{}: {}", resp.status, resp.text()));
                &step.other
            }
            Err(error) => {
                self.fault(error.clone());
                &step.other
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer.ok().filter(|resp| resp.status.is_success())
    }

    fn fault(&self, what: String) {
        let mut faults = self.faults.lock().expect("not poisoned");
        if faults.len() < KEPT_FAULTS {
            faults.push(what);
        }
    }
}

/// Runs cycles until `stop`: log in on one gateway, refresh on the other, log out on the
/// first with the new pair; then the same the other way round. A step not answered 2xx
/// ends its cycle, and the next one starts after a short pause. After a refused cycle the
/// next one takes a session logged in at the start (refresh then logout, or logout
/// alone, in turn), so that refreshes and logouts meet the gap too although logins are
/// refused first.
pub fn session_cycles(
    gws: [Arc<Gateway>; 2],
    user: &str,
    password: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<SessionTally>, tokio::task::JoinHandle<()>) {
    let tally = Arc::new(SessionTally::default());
    let counts = tally.clone();
    let credentials = json!({ "username": user, "password": password });
    let task = tokio::spawn(async move {
        let mut reserve = Vec::new();
        for turn in 0..RESERVE {
            let gw = &gws[turn % 2];
            reserve.extend(login(gw, &credentials, &counts).await);
        }
        let mut refused = false;
        for turn in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (first, second) = (&gws[turn % 2], &gws[(turn + 1) % 2]);
            let reserved = if refused { reserve.pop() } else { None };
            let done = match reserved {
                Some(pair) if reserve.len() % 2 == 0 => logout(first, pair, &counts).await,
                Some((_, refresh)) => rotate_then_logout(first, second, &refresh, &counts).await,
                None => cycle(first, second, &credentials, &counts).await,
            };
            refused = !done;
            if refused {
                tokio::time::sleep(PAUSE).await;
            }
        }
    });
    (tally, task)
}

/// Sessions logged in before the load starts, each used once after a refusal (a refresh
/// answered 503 may still have spent its token).
const RESERVE: usize = 16;

/// One login -> refresh -> logout; true when every step answered 2xx.
async fn cycle(
    first: &Gateway,
    second: &Gateway,
    credentials: &Value,
    tally: &SessionTally,
) -> bool {
    match login(first, credentials, tally).await {
        Some((_, refresh)) => rotate_then_logout(first, second, &refresh, tally).await,
        None => false,
    }
}

/// A new pair from `gw`, or None (counted).
async fn login(
    gw: &Gateway,
    credentials: &Value,
    tally: &SessionTally,
) -> Option<(String, String)> {
    let answer = send(post_json(gw, "/auth/login", credentials)).await;
    let login = tally.record(&tally.login, answer)?;
    pair_of(tally, &tally.login, &login)
}

/// Refresh on `second`, log out the new pair on `first`; true when both answered 2xx.
async fn rotate_then_logout(
    first: &Gateway,
    second: &Gateway,
    refresh: &str,
    tally: &SessionTally,
) -> bool {
    let body = json!({ "refresh_token": refresh });
    let answer = send(post_json(second, "/auth/refresh", &body)).await;
    let Some(refreshed) = tally.record(&tally.refresh, answer) else {
        return false;
    };
    match pair_of(tally, &tally.refresh, &refreshed) {
        Some(pair) => logout(first, pair, tally).await,
        None => false,
    }
}

/// Logs `(access, refresh)` out on `gw`; true, and the access token kept, on 2xx.
async fn logout(gw: &Gateway, (access, refresh): (String, String), tally: &SessionTally) -> bool {
    let body = json!({ "refresh_token": refresh });
    let answer = send(post_json(gw, "/auth/logout", &body).bearer(&access)).await;
    let done = tally.record(&tally.logout, answer).is_some();
    if done {
        tally.logged_out.lock().expect("not poisoned").push(access);
    }
    done
}

fn post_json(gw: &Gateway, path: &str, body: &Value) -> RequestBuilder {
    gw.client()
        .post(path)
        .header("content-type", "application/json")
        .body(body.to_string())
}

async fn send(request: RequestBuilder) -> Result<Response, String> {
    request.deadline(STEP_DEADLINE).try_send_h1().await
}

/// The access and refresh tokens of a 200 pair; a 2xx without them is a fault of `step`.
fn pair_of(tally: &SessionTally, step: &Answers, resp: &Response) -> Option<(String, String)> {
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let token = |k: &str| body[k].as_str().map(str::to_string);
    let pair = token("access_token").zip(token("refresh_token"));
    if pair.is_none() {
        step.ok.fetch_sub(1, Ordering::Relaxed);
        step.other.fetch_add(1, Ordering::Relaxed);
        tally.fault(format!("{} without a pair: {}", resp.status, resp.text()));
    }
    pair
}
