//! One contract, every backend: the in-process store always, Redis too when `REDIS_URL` is set.
use std::time::Duration;

use ironquill::store::{EphemeralStore, MemoryStore, RedisStore};
use uuid::Uuid;

async fn for_each_backend<F, Fut>(check: F)
where
    F: Fn(ironquill::store::Store, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    check(
        ironquill::store::Store::Memory(MemoryStore::new(1_000)),
        "memory".into(),
    )
    .await;
    if let Ok(url) = std::env::var("REDIS_URL") {
        let prefix = format!("iq-test:{}:", Uuid::new_v4().simple());
        let redis = RedisStore::new(&url, &prefix).expect("redis store");
        check(ironquill::store::Store::Redis(redis), "redis".into()).await;
    }
}

#[tokio::test]
async fn set_then_get_returns_the_value_until_it_expires() {
    for_each_backend(|store, name| async move {
        store
            .set("k", b"v1", Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"v1"[..]),
            "{name}"
        );
        store
            .set("k", b"v2", Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"v2"[..]),
            "{name}: replaced"
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(store.get("k").await.unwrap(), None, "{name}: expired");
        assert_eq!(store.get("never-set").await.unwrap(), None, "{name}");
    })
    .await;
}

#[tokio::test]
async fn any_exists_sees_each_live_key_and_no_expired_one() {
    for_each_backend(|store, name| async move {
        assert!(
            !store.any_exists(&["a", "b"]).await.unwrap(),
            "{name}: none set"
        );
        store
            .set("b", b"1", Duration::from_millis(300))
            .await
            .unwrap();
        assert!(
            store.any_exists(&["a", "b"]).await.unwrap(),
            "{name}: second key"
        );
        assert!(
            store.any_exists(&["b", "a"]).await.unwrap(),
            "{name}: first key"
        );
        assert!(
            !store.any_exists(&["a"]).await.unwrap(),
            "{name}: other key"
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(
            !store.any_exists(&["a", "b"]).await.unwrap(),
            "{name}: expired"
        );
    })
    .await;
}

#[tokio::test]
async fn take_returns_the_value_once() {
    for_each_backend(|store, name| async move {
        store
            .set("flow", b"state", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.take("flow").await.unwrap().as_deref(),
            Some(&b"state"[..]),
            "{name}"
        );
        assert_eq!(
            store.take("flow").await.unwrap(),
            None,
            "{name}: second take"
        );
        assert_eq!(store.get("flow").await.unwrap(), None, "{name}: gone");
    })
    .await;
}

#[tokio::test]
async fn concurrent_takes_have_exactly_one_winner() {
    for_each_backend(|store, name| async move {
        store
            .set("once", b"x", Duration::from_secs(60))
            .await
            .unwrap();
        let takes = (0..16).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take("once").await.unwrap() })
        });
        let mut winners = 0;
        for t in takes {
            if t.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "{name}");
    })
    .await;
}

#[tokio::test]
async fn an_expired_value_cannot_be_taken() {
    for_each_backend(|store, name| async move {
        store
            .set("short", b"x", Duration::from_millis(100))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(store.take("short").await.unwrap(), None, "{name}");
    })
    .await;
}

#[tokio::test]
async fn incr_counts_within_a_fixed_window_then_restarts() {
    for_each_backend(|store, name| async move {
        let window = Duration::from_millis(400);
        assert_eq!(store.incr("hits", window).await.unwrap(), 1, "{name}");
        assert_eq!(store.incr("hits", window).await.unwrap(), 2, "{name}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A later increment does not extend the window.
        assert_eq!(store.incr("hits", window).await.unwrap(), 3, "{name}");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            store.incr("hits", window).await.unwrap(),
            1,
            "{name}: new window"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_increments_are_never_lost() {
    for_each_backend(|store, name| async move {
        let incs = (0..50).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.incr("race", Duration::from_secs(60)).await.unwrap() })
        });
        let mut seen = Vec::new();
        for t in incs {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=50).collect::<Vec<u64>>(), "{name}");
    })
    .await;
}

#[tokio::test]
async fn keys_are_isolated_by_prefix_on_redis() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        return;
    };
    let a = RedisStore::new(&url, &format!("iq-test:{}:", Uuid::new_v4().simple())).unwrap();
    let b = RedisStore::new(&url, &format!("iq-test:{}:", Uuid::new_v4().simple())).unwrap();
    a.set("shared", b"a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get("shared").await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_miss() {
    // Fail closed: callers must be able to tell "absent" from "could not ask".
    let store = RedisStore::new("redis://127.0.0.1:1", "iq-test:").unwrap();
    assert!(store.get("k").await.is_err());
    assert!(store.take("k").await.is_err());
    assert!(store.incr("k", Duration::from_secs(1)).await.is_err());
    assert!(store.ping().await.is_err());
}
