//! The Redis staging area between the instances' buffers and MySQL, as Lua scripts (each one atomic).
//!
//! Keys (prefix `maple:v1:likes:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `epoch` | string | random id of this Redis dataset; missing after a restart that lost the data |
//! | `queue` | list | pushed entries `src␟index␟id␟character␟liker␟at_ms`, FIFO |
//! | `rel` | set | pending `character␟liker` pairs (the relation set: dedupes the pending count) |
//! | `pending` | hash | character → number of pending pairs in `rel` |
//! | `synced:<character>` | string, TTL | the character's MySQL `like_count` as of the last sync (a cache) |
//! | `wm:<src>` | string, TTL 1 day | highest index of `src` such that every index up to it is in MySQL |
//! | `inflight` / `batch` | string / list | the batch id claimed by the syncer and its entries |
//!
//! Scripts: [`FLUSH`] appends a buffer's entries (and answers the source's watermark), refusing when the
//! caller's epoch is not the current one; [`PEEK`] reads a character's cached count, pending count and
//! whether a pair is pending; [`CLAIM`] hands the syncer the in-flight batch if one was left by a syncer
//! that died, else moves the head of the queue into a new batch; [`ACK`] (after the MySQL commit) removes
//! the batch's pairs from `rel` and `pending`, advances the watermarks whose range continues them, and
//! caches the exact MySQL counts — in one step, so the count a reader sees (`synced + pending`) never
//! dips. An `ACK` for a batch that is no longer the in-flight one does nothing.

/// Field separator (`\x1f`): liker ids and character names never contain control characters.
pub const SEP: char = '\x1f';

pub const EPOCH: &str = "maple:v1:likes:epoch";
pub const QUEUE: &str = "maple:v1:likes:queue";
pub const REL: &str = "maple:v1:likes:rel";
pub const PENDING: &str = "maple:v1:likes:pending";
pub const INFLIGHT: &str = "maple:v1:likes:inflight";
pub const BATCH: &str = "maple:v1:likes:batch";

/// How long a cached synced count lives without a sync refreshing it.
pub const SYNCED_TTL_MS: u64 = 60_000;
/// How long a source's watermark lives without progress.
pub const WATERMARK_TTL_MS: u64 = 86_400_000;

pub fn synced_key(character: &str) -> String {
    format!("maple:v1:likes:synced:{character}")
}

pub fn watermark_key(src: &str) -> String {
    format!("maple:v1:likes:wm:{src}")
}

/// KEYS: epoch, queue, rel, pending, wm:<src>. ARGV: expected epoch, candidate epoch, src, n, then
/// (index, id, character, liker, at_ms) × n. Returns {1, epoch, watermark} or {0, epoch, 0} (refused).
pub const FLUSH: &str = r#"
local e = redis.call('get', KEYS[1])
if not e then
  redis.call('set', KEYS[1], ARGV[2])
  e = ARGV[2]
end
if e ~= ARGV[1] then return {0, e, 0} end
local src = ARGV[3]
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local b = 5 + i * 5
  local c = ARGV[b + 2]
  local l = ARGV[b + 3]
  redis.call('rpush', KEYS[2], src .. '\31' .. ARGV[b] .. '\31' .. ARGV[b + 1] .. '\31' .. c .. '\31' .. l .. '\31' .. ARGV[b + 4])
  if redis.call('sadd', KEYS[3], c .. '\31' .. l) == 1 then
    redis.call('hincrby', KEYS[4], c, 1)
  end
end
local wm = redis.call('get', KEYS[5]) or '0'
return {1, e, tonumber(wm)}
"#;

/// KEYS: synced:<character>, pending, rel. ARGV: character, pair (empty: no membership check).
/// Returns {synced or -1, pending, member 0/1}.
pub const PEEK: &str = r#"
local s = redis.call('get', KEYS[1]) or '-1'
local p = redis.call('hget', KEYS[2], ARGV[1]) or '0'
local m = 0
if ARGV[2] ~= '' then m = redis.call('sismember', KEYS[3], ARGV[2]) end
return {tonumber(s), tonumber(p), m}
"#;

/// KEYS: synced:<character>. ARGV: count, ttl ms. Raises the cached count (never lowers it).
pub const FILL: &str = r#"
local cur = tonumber(redis.call('get', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"#;

/// KEYS: inflight, batch, queue. ARGV: new batch id, max entries. Returns {id, entries} ('' when empty).
pub const CLAIM: &str = r#"
local cur = redis.call('get', KEYS[1])
if cur then return {cur, redis.call('lrange', KEYS[2], 0, -1)} end
local items = redis.call('lrange', KEYS[3], 0, tonumber(ARGV[2]) - 1)
if #items == 0 then return {'', {}} end
redis.call('ltrim', KEYS[3], #items, -1)
redis.call('del', KEYS[2])
for i = 1, #items do redis.call('rpush', KEYS[2], items[i]) end
redis.call('set', KEYS[1], ARGV[1])
return {ARGV[1], items}
"#;

/// KEYS: inflight, batch, rel, pending, then wm:<src> × nsrc, then synced:<character> × nchar.
/// ARGV: batch id, synced ttl ms, wm ttl ms, nsrc, (first, last) × nsrc, nchar, total × nchar.
/// Returns 1, or 0 when the batch is not the in-flight one.
pub const ACK: &str = r#"
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
local function field(s, k)
  local start = 1
  for _ = 1, k - 1 do
    start = string.find(s, '\31', start, true) + 1
  end
  local stop = string.find(s, '\31', start, true)
  if stop then return string.sub(s, start, stop - 1) end
  return string.sub(s, start)
end
local items = redis.call('lrange', KEYS[2], 0, -1)
for i = 1, #items do
  local c = field(items[i], 4)
  local l = field(items[i], 5)
  if redis.call('srem', KEYS[3], c .. '\31' .. l) == 1 then
    if redis.call('hincrby', KEYS[4], c, -1) <= 0 then redis.call('hdel', KEYS[4], c) end
  end
end
local nsrc = tonumber(ARGV[4])
for j = 1, nsrc do
  local key = KEYS[4 + j]
  local first = tonumber(ARGV[3 + 2 * j])
  local last = ARGV[4 + 2 * j]
  local cur = tonumber(redis.call('get', key) or '0')
  if first == cur + 1 then redis.call('set', key, last, 'PX', ARGV[3]) end
end
local base = 5 + 2 * nsrc
local nchar = tonumber(ARGV[base])
for j = 1, nchar do
  local key = KEYS[4 + nsrc + j]
  local total = tonumber(ARGV[base + j])
  local cur = tonumber(redis.call('get', key) or '-1')
  if total >= cur then redis.call('set', key, ARGV[base + j], 'PX', ARGV[2]) end
end
redis.call('del', KEYS[2])
redis.call('del', KEYS[1])
return 1
"#;

/// One entry of the queue, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    pub src: String,
    pub index: u64,
    pub id: String,
    pub character: String,
    pub liker: String,
    pub at_ms: i64,
}

impl QueueItem {
    pub fn encode(&self) -> String {
        [
            self.src.as_str(),
            &self.index.to_string(),
            &self.id,
            &self.character,
            &self.liker,
            &self.at_ms.to_string(),
        ]
        .join("\x1f")
    }

    pub fn parse(raw: &str) -> Option<QueueItem> {
        let mut it = raw.split(SEP);
        let item = QueueItem {
            src: it.next()?.to_string(),
            index: it.next()?.parse().ok()?,
            id: it.next()?.to_string(),
            character: it.next()?.to_string(),
            liker: it.next()?.to_string(),
            at_ms: it.next()?.parse().ok()?,
        };
        if it.next().is_some() {
            return None;
        }
        Some(item)
    }
}

/// Per source of a batch: the first index and the last one of the contiguous run that starts there, in
/// queue order (what [`ACK`] needs to advance the watermarks).
pub fn source_ranges(items: &[QueueItem]) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64, bool)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for it in items {
        match at.get(it.src.as_str()) {
            None => {
                at.insert(&it.src, out.len());
                out.push((it.src.clone(), it.index, it.index, true));
            }
            Some(&i) => {
                let r = &mut out[i];
                if r.3 && it.index == r.2 + 1 {
                    r.2 = it.index;
                } else {
                    r.3 = false;
                }
            }
        }
    }
    out.into_iter().map(|(s, a, b, _)| (s, a, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(src: &str, index: u64) -> QueueItem {
        QueueItem {
            src: src.into(),
            index,
            id: format!("{src}-{index}"),
            character: "evan".into(),
            liker: "a:b c".into(),
            at_ms: 5,
        }
    }

    #[test]
    fn queue_items_round_trip_and_reject_garbage() {
        let it = item("gw.1a2b.g3", 7);
        assert_eq!(QueueItem::parse(&it.encode()), Some(it));
        assert_eq!(QueueItem::parse("a\x1fb"), None);
        assert_eq!(QueueItem::parse("s\x1fx\x1fi\x1fc\x1fl\x1f1"), None);
        assert_eq!(
            QueueItem::parse("s\x1f1\x1fi\x1fc\x1fl\x1f1\x1fextra"),
            None
        );
    }

    #[test]
    fn source_ranges_stop_at_the_first_gap() {
        let items = vec![
            item("a", 4),
            item("b", 1),
            item("a", 5),
            item("a", 7),
            item("b", 2),
            item("a", 8),
        ];
        assert_eq!(
            source_ranges(&items),
            vec![("a".into(), 4, 5), ("b".into(), 1, 2)]
        );
    }
}
