//! The Redis user store against a real redis-server: two stores on one server stand for two
//! gateway instances.

use crate::common::Redis;
use portcullis::users::hash::Hasher;
use portcullis::users::redis::RedisUsers;
use portcullis::users::{LoginError, RegisterError, UserStore};

const PW: &str = "correct horse battery";

fn cheap() -> Hasher {
    Hasher::with_params(2, 8, 1024, 1, 1)
}

async fn store(server: &Redis) -> UserStore {
    let users = RedisUsers::connect(&server.target(), "t:").await.unwrap();
    UserStore::Redis(users)
}

async fn raw_conn(server: &Redis) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn user_registered_on_one_instance_logs_in_on_another() {
    let server = Redis::start_volatile().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let made = a
        .register(&cheap(), "Carol", PW, vec!["member".into()])
        .await
        .unwrap();
    assert_eq!(made.name, "carol");
    let user = b.authenticate(&cheap(), "CAROL", PW).await.unwrap();
    assert_eq!(user, made);
    assert!(b.can_lookup());
    assert_eq!(b.lookup("carol").await.unwrap(), Some(made));
    assert_eq!(b.lookup("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_have_exactly_one_winner() {
    let server = Redis::start_volatile().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let h = cheap();
    for round in 0..10 {
        let name = format!("user{round}");
        let (ra, rb) = tokio::join!(
            a.register(&h, &name, PW, vec![]),
            b.register(&h, &name, "another long password", vec![]),
        );
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{name}: {ra:?} {rb:?}");
        let loser = if ra.is_ok() { rb } else { ra };
        assert!(matches!(loser, Err(RegisterError::Taken)), "{loser:?}");
    }
}

#[tokio::test]
async fn taken_and_invalid_registrations_are_refused() {
    let server = Redis::start_volatile().await;
    let a = store(&server).await;
    a.register(&cheap(), "dave", PW, vec![]).await.unwrap();
    let again = a.register(&cheap(), "DAVE", PW, vec![]).await;
    assert!(matches!(again, Err(RegisterError::Taken)), "{again:?}");
    let bad = a.register(&cheap(), "bad name!", PW, vec![]).await;
    assert!(matches!(bad, Err(RegisterError::Invalid(_))), "{bad:?}");
    let weak = a.register(&cheap(), "erin", "short", vec![]).await;
    assert!(matches!(weak, Err(RegisterError::Invalid(_))), "{weak:?}");
}

#[tokio::test]
async fn unknown_user_wrong_password_and_disabled_user_look_the_same() {
    let server = Redis::start_volatile().await;
    let a = store(&server).await;
    a.register(&cheap(), "alice", PW, vec![]).await.unwrap();
    a.register(&cheap(), "bob", PW, vec![]).await.unwrap();
    let mut conn = raw_conn(&server).await;
    let _: () = redis::cmd("HSET")
        .arg("t:user:bob")
        .arg("disabled")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let attempts = [
        ("alice", "wrong password!!"),
        ("nobody", PW),
        ("bob", PW),
        ("bad name!", PW),
    ];
    for (name, pw) in attempts {
        let err = a.authenticate(&cheap(), name, pw).await.unwrap_err();
        assert!(matches!(err, LoginError::BadCredentials), "{name}: {err:?}");
    }
    assert_eq!(a.lookup("bob").await.unwrap(), None, "disabled: no refresh");
}

#[tokio::test]
async fn weak_hash_is_upgraded_in_redis_on_login() {
    let server = Redis::start_volatile().await;
    let a = store(&server).await;
    let weak = Hasher::with_params(1, 8, 1024, 1, 1);
    let phc = weak.hash(PW).await.unwrap();
    let UserStore::Redis(users) = &a else {
        unreachable!("store() makes a Redis store")
    };
    users.add_user("frank", &phc, vec![]).await.unwrap();
    let stronger = Hasher::with_params(1, 8, 2048, 1, 1);
    assert!(stronger.verify(&phc, PW).await.unwrap().needs_rehash);
    a.authenticate(&stronger, "frank", PW).await.unwrap();
    let mut conn = raw_conn(&server).await;
    let stored: String = redis::cmd("HGET")
        .arg("t:user:frank")
        .arg("hash")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_ne!(stored, phc, "the hash was upgraded");
    assert!(stronger.verify(&stored, PW).await.unwrap().ok);
    assert!(!stronger.verify(&stored, PW).await.unwrap().needs_rehash);
}

#[tokio::test]
async fn redis_down_is_unavailable_not_bad_credentials() {
    let mut server = Redis::start_volatile().await;
    let a = store(&server).await;
    a.register(&cheap(), "grace", PW, vec![]).await.unwrap();
    server.kill();
    let err = a.authenticate(&cheap(), "grace", PW).await.unwrap_err();
    assert!(matches!(err, LoginError::Unavailable(_)), "{err:?}");
    let err = a.lookup("grace").await.unwrap_err();
    assert!(matches!(err, LoginError::Unavailable(_)), "{err:?}");
    let err = a.register(&cheap(), "heidi", PW, vec![]).await.unwrap_err();
    assert!(matches!(err, RegisterError::Unavailable(_)), "{err:?}");
}
