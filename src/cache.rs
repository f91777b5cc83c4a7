//! Bounded in-process caches whose entries expire: verified keys and tokens, tenants by slug,
//! the in-process store (revocation markers, counters), cooling addresses, audit sampling.
//!
//! Several of these are read on every authenticated request, so a lookup must cost next to
//! nothing: [`quick_cache`] (sharded locks, S3-FIFO eviction, no background work) does the
//! bounded, concurrent part, about a tenth of what moka's lookup cost us under load. Each entry
//! carries its own deadline, checked on every read: an entry is never returned after it.
//!
//! quick_cache knows nothing of deadlines, and its eviction (S3-FIFO) keeps entries already
//! seen as hot: expired entries nobody reads again would sit there and leave new entries only
//! the small cold queue, to be evicted after a few thousand later writes. So expired entries
//! are swept out every [`SWEEP_EVERY`] (by a write, on the blocking pool), and a cache made
//! with [`TtlCache::keeping_live`] never evicts a live entry at all (revocation markers).
use std::{
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use quick_cache::{
    DefaultHashBuilder, Equivalent, Lifecycle, UnitWeighter,
    sync::{Cache, EntryAction, EntryResult},
};

/// How often writes sweep out expired entries.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Longer than any entry lives: what an unbounded time to live means here.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Clone)]
struct Timed<V> {
    value: V,
    expires_at: Instant,
}

impl<V> Timed<V> {
    fn live_at(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

/// Tells quick_cache which entries it must not evict: the live ones, when asked to keep them.
#[derive(Clone)]
struct KeepLive(bool);

impl<K, V> Lifecycle<K, Timed<V>> for KeepLive {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn is_pinned(&self, _: &K, entry: &Timed<V>) -> bool {
        self.0 && entry.live_at(Instant::now())
    }
}

type Entries<K, V> = Cache<K, Timed<V>, UnitWeighter, DefaultHashBuilder, KeepLive>;

/// Removes every entry expired by now (a sweep visits every entry).
fn drop_expired<K: Eq + Hash + Clone, V: Clone>(entries: &Entries<K, V>) {
    let now = Instant::now();
    entries.retain(|_, entry| entry.live_at(now));
}

/// A bounded map whose entries live for `ttl` (or until their own deadline).
pub struct TtlCache<K, V> {
    entries: Arc<Entries<K, V>>,
    ttl: Duration,
    capacity: usize,
    /// When the next write sweeps, in milliseconds since `born`.
    next_sweep: AtomicU64,
    next_full_check: AtomicU64,
    born: Instant,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// At most `capacity` entries, each kept `ttl` unless inserted with its own deadline; when
    /// full, a new entry evicts another (expired ones first, as they are swept).
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self::build(capacity, ttl, false)
    }

    /// Like [`Self::new`], but a live entry is never evicted: beyond `capacity` live entries
    /// the cache grows. [`Self::is_full`] tells a caller that would rather refuse new entries.
    pub fn keeping_live(capacity: usize, ttl: Duration) -> Self {
        Self::build(capacity, ttl, true)
    }

    fn build(capacity: usize, ttl: Duration, keep_live: bool) -> Self {
        let capacity = capacity.max(1);
        // Kept live, entries past quick_cache's own capacity make every insert walk them
        // looking for one to evict: give it room, so pinning stays a backstop.
        let room = if keep_live {
            capacity.saturating_mul(2)
        } else {
            capacity
        };
        Self {
            entries: Arc::new(Cache::with(
                room,
                room as u64,
                UnitWeighter,
                DefaultHashBuilder::default(),
                KeepLive(keep_live),
            )),
            ttl,
            capacity,
            next_sweep: AtomicU64::new(millis(SWEEP_EVERY)),
            next_full_check: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Removes every expired entry now.
    pub fn sweep(&self) {
        drop_expired(&self.entries);
    }

    /// Whether `capacity` entries are held. At capacity, expired entries are swept out first,
    /// at most once a second (a sweep visits every entry): in between, the count answers.
    pub fn is_full(&self) -> bool {
        if self.entries.len() < self.capacity {
            return false;
        }
        if self.claim(
            &self.next_full_check,
            Instant::now(),
            Duration::from_secs(1),
        ) {
            self.sweep();
        }
        self.entries.len() >= self.capacity
    }

    /// Whether this caller takes the turn that `next` schedules (then moved `every` on).
    fn claim(&self, next: &AtomicU64, now: Instant, every: Duration) -> bool {
        let at = millis(now.saturating_duration_since(self.born));
        let due = next.load(Ordering::Relaxed);
        at >= due
            && next
                .compare_exchange(
                    due,
                    at + millis(every),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Called by every write: one writer per [`SWEEP_EVERY`] sweeps, on the blocking pool when
    /// there is a runtime (a full sweep visits every entry).
    fn sweep_when_due(&self, now: Instant) {
        if !self.claim(&self.next_sweep, now, SWEEP_EVERY) {
            return;
        }
        let entries = self.entries.clone();
        let sweep = move || drop_expired(&entries);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(sweep)),
            Err(_) => sweep(),
        }
    }

    /// The live value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let now = Instant::now();
        let entry = self.entries.get(key)?;
        if entry.live_at(now) {
            return Some(entry.value);
        }
        self.entries.remove_if(key, |e| !e.live_at(now));
        None
    }

    /// Whether a live value is under `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Keeps `value` for the cache's time to live.
    pub fn insert(&self, key: K, value: V) {
        self.insert_for(key, value, self.ttl);
    }

    /// Keeps `value` for `ttl` (never beyond the cache's time to live).
    pub fn insert_for(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        self.sweep_when_due(now);
        let expires_at = self.deadline(now, ttl);
        self.entries.insert(key, Timed { value, expires_at });
    }

    /// `now + ttl`, capped by the cache's time to live (which may be `Duration::MAX`).
    fn deadline(&self, now: Instant, ttl: Duration) -> Instant {
        let ttl = ttl.min(self.ttl).min(CENTURY);
        now + ttl
    }

    /// Removes the entry and returns its value if it was live: of concurrent callers, at most
    /// one gets it.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let now = Instant::now();
        let (_, entry) = self.entries.remove(key)?;
        entry.live_at(now).then_some(entry.value)
    }

    /// Atomically: when a live value is under `key`, `update` changes it in place and its
    /// result is returned (the deadline stays); otherwise `init` is stored for `ttl` (capped by
    /// the cache's) and `first` returned. Concurrent calls for one key run one after another.
    pub fn upsert<Q, T>(
        &self,
        key: &Q,
        ttl: Duration,
        init: impl FnOnce() -> (V, T),
        update: impl FnOnce(&mut V) -> T,
    ) -> T
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        let now = Instant::now();
        self.sweep_when_due(now);
        let expires_at = self.deadline(now, ttl);
        let mut init = Some(init);
        let result = self.entries.entry(key, None, |_, entry| {
            if entry.live_at(now) {
                return EntryAction::Retain(update(&mut entry.value));
            }
            let (value, first) = (init.take().expect("called once"))();
            *entry = Timed { value, expires_at };
            EntryAction::Retain(first)
        });
        match result {
            EntryResult::Retained(out) => out,
            EntryResult::Vacant(guard) => {
                let (value, first) = (init.take().expect("called once"))();
                let _ = guard.insert(Timed { value, expires_at });
                first
            }
            // Neither is asked for (no `Remove`/`ReplaceWithGuard`, no timeout); were a later
            // quick_cache to answer so, the value is stored afresh all the same.
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => {
                let (value, first) = (init.take().expect("called once"))();
                self.entries
                    .insert(key.to_owned(), Timed { value, expires_at });
                first
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, thread};

    use super::*;

    #[test]
    fn entries_expire_at_their_deadline() {
        let cache = TtlCache::new(10, Duration::from_millis(300));
        cache.insert("a".to_owned(), 1);
        cache.insert_for("b".to_owned(), 2, Duration::from_secs(60));
        assert_eq!(cache.get("a"), Some(1));
        thread::sleep(Duration::from_millis(350));
        assert_eq!(cache.get("a"), None, "past its ttl");
        assert_eq!(
            cache.get("b"),
            None,
            "an entry never outlives the cache's ttl"
        );
        cache.insert_for("c".to_owned(), 3, Duration::ZERO);
        assert!(
            !cache.contains_key("c"),
            "a deadline already passed is never served"
        );
        let unbounded = TtlCache::new(10, Duration::MAX);
        unbounded.insert("d".to_owned(), 4);
        unbounded.insert_for("e".to_owned(), 5, Duration::from_millis(1));
        thread::sleep(Duration::from_millis(5));
        assert_eq!((unbounded.get("d"), unbounded.get("e")), (Some(4), None));
    }

    #[test]
    fn removing_returns_a_live_value_once() {
        let cache = TtlCache::new(10, Duration::from_secs(60));
        cache.insert("k".to_owned(), 7);
        assert_eq!(cache.remove("k"), Some(7));
        assert_eq!(cache.remove("k"), None);
        assert_eq!(cache.get("k"), None);
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = TtlCache::new(100, Duration::from_secs(60));
        for i in 0..10_000 {
            cache.insert(i, i);
        }
        let kept = (0..10_000).filter(|i| cache.contains_key(i)).count();
        assert!(kept <= 110, "{kept} entries kept of a capacity of 100");
        assert!(cache.contains_key(&9_999), "the newest entry is kept");
    }

    #[test]
    fn expired_entries_swept_out_leave_room_for_new_ones() {
        // Without the sweep, expired entries that were read once stay hot and a new entry
        // that nobody reads yet is evicted after a few more writes.
        let cache = TtlCache::new(100, Duration::from_secs(60));
        for i in 0..100 {
            cache.insert_for(i, i, Duration::from_millis(200));
            assert!(cache.contains_key(&i));
        }
        thread::sleep(Duration::from_millis(250));
        cache.sweep();
        cache.insert(1_000, 1_000);
        for i in 2_000..2_050 {
            cache.insert(i, i);
        }
        assert_eq!(
            cache.get(&1_000),
            Some(1_000),
            "a live entry evicted for newer ones"
        );
    }

    #[test]
    fn writes_sweep_by_themselves() {
        let cache = TtlCache::new(100, Duration::from_secs(60));
        cache.insert_for(1, 1, Duration::from_millis(1));
        cache.next_sweep.store(0, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(20));
        cache.insert(2, 2);
        assert_eq!(
            cache.entries.len(),
            1,
            "the expired entry is swept out by a write"
        );
    }

    #[test]
    fn a_cache_keeping_live_entries_never_evicts_them_and_says_when_full() {
        let cache = TtlCache::keeping_live(10, Duration::from_secs(60));
        cache.insert("revoked".to_owned(), ());
        for i in 0..100 {
            cache.insert(format!("k{i}"), ());
        }
        assert!(cache.contains_key("revoked"));
        assert!(cache.is_full());
        let expiring = TtlCache::keeping_live(10, Duration::from_millis(300));
        for i in 0..10 {
            expiring.insert(i, ());
        }
        assert!(expiring.is_full());
        thread::sleep(Duration::from_millis(350));
        expiring.next_full_check.store(0, Ordering::Relaxed);
        assert!(!expiring.is_full(), "expired entries do not count");
    }

    #[test]
    fn concurrent_upserts_are_never_lost() {
        let cache = Arc::new(TtlCache::<String, u64>::new(100, Duration::from_secs(60)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cache = cache.clone();
                thread::spawn(move || {
                    for _ in 0..1_000 {
                        cache.upsert(
                            "n",
                            Duration::from_secs(60),
                            || (1, 1),
                            |n| {
                                *n += 1;
                                *n
                            },
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cache.get("n"), Some(4_000));
    }

    #[test]
    fn an_expired_entry_starts_again() {
        let cache = TtlCache::<String, u64>::new(10, Duration::from_secs(60));
        let bump = |ttl| {
            cache.upsert(
                "n",
                ttl,
                || (1, 1),
                |n| {
                    *n += 1;
                    *n
                },
            )
        };
        assert_eq!(bump(Duration::from_millis(300)), 1);
        assert_eq!(bump(Duration::from_millis(300)), 2);
        thread::sleep(Duration::from_millis(350));
        assert_eq!(
            bump(Duration::from_millis(300)),
            1,
            "a new window after the deadline"
        );
    }
}
