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
//! | `inflight` | hash | id and size of the batch the syncer claimed (it stays at the head of `queue`) |
//! | `pushed` / `acked` | counters | entries ever pushed / acknowledged in this dataset: the queue position |
//!
//! Scripts: [`FLUSH`] appends a buffer's entries and answers the position of the last one, the source's
//! watermark and how many entries were acknowledged so far, refusing when the caller's epoch is not the
//! current one (the queue is FIFO, so an entry at position p is acknowledged once `acked ≥ p`: if by
//! then the watermark does not cover it — or if `pushed` fell below p — it was lost, e.g. in a failover
//! to a replica that missed the queue's tail, and the source pushes it again); [`PEEK`] reads a
//! character's cached count, pending count and whether a pair is pending; [`CLAIM`] hands the syncer the
//! in-flight batch if one was left by a syncer that died, else records the head of the queue as a new
//! batch; after the MySQL commit the syncer raises each character's cached count and takes its pairs out
//! of `rel` and `pending` in the same step ([`SETTLE`]), then [`ACK`] trims the batch off the queue and
//! advances the watermarks whose range continues them. Scripts for a batch that is no longer the
//! in-flight one do nothing.
//!
//! The writing scripts ([`FLUSH`], [`CLAIM`], [`SETTLE`], [`ACK`]) are durable writes: they run through
//! `crate::redis::durable` and count as done only once a replica has them; [`PEEK`] is a read and [`FILL`]
//! a disposable cache write on the command client.
//!
//! Redis runs one script at a time and answers nobody meanwhile, so every script is kept short: flushes
//! go in chunks of a few hundred entries, cached counts in chunks, and no script copies a batch.
//!
//! Redis's Lua `unpack` fails beyond about 8,000 values (the C stack of its Lua 5.1), and a [`SETTLE`] call
//! carries every pair of a character in the batch (up to `MAPLE_LIKE_SYNC_BATCH`, 10,000): scripts hand
//! lists to commands in slices of 1,000 values (`unpack(t, i, j)`), never a whole list at once.

/// Field separator (`\x1f`): liker ids and character names never contain control characters.
pub const SEP: char = '\x1f';
/// Separator of the entries of a claimed batch (`\x1e`).
pub const RECORD_SEP: char = '\x1e';

pub const EPOCH: &str = "maple:v1:likes:epoch";
pub const QUEUE: &str = "maple:v1:likes:queue";
pub const REL: &str = "maple:v1:likes:rel";
pub const PENDING: &str = "maple:v1:likes:pending";
pub const INFLIGHT: &str = "maple:v1:likes:inflight";
pub const PUSHED: &str = "maple:v1:likes:pushed";
pub const ACKED: &str = "maple:v1:likes:acked";

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

/// KEYS: epoch, queue, rel, pending, wm:<src>, pushed, acked. ARGV: expected epoch, candidate epoch, src,
/// n, then (index, id, character, liker, at_ms) × n. Returns {1, epoch, watermark, position of the last
/// entry pushed, acked} or {0, epoch, 0, 0, 0} (refused).
pub const FLUSH: &str = r#"
local e = redis.call('get', KEYS[1])
if not e then
  redis.call('set', KEYS[1], ARGV[2])
  e = ARGV[2]
end
if e ~= ARGV[1] then return {0, e, 0, 0, 0} end
local src = ARGV[3]
local n = tonumber(ARGV[4])
if n > 0 then
  local entries, members, chars, seen = {}, {}, {}, {}
  for i = 0, n - 1 do
    local b = 5 + i * 5
    local c = ARGV[b + 2]
    local m = c .. '\31' .. ARGV[b + 3]
    entries[i + 1] = src .. '\31' .. ARGV[b] .. '\31' .. ARGV[b + 1] .. '\31' .. m .. '\31' .. ARGV[b + 4]
    if not seen[m] then
      seen[m] = true
      members[#members + 1] = m
      chars[#chars + 1] = c
    end
  end
  for i = 1, #entries, 1000 do
    redis.call('rpush', KEYS[2], unpack(entries, i, math.min(i + 999, #entries)))
  end
  local member = {}
  for i = 1, #members, 1000 do
    local j = math.min(i + 999, #members)
    local part = redis.call('smismember', KEYS[3], unpack(members, i, j))
    for k = 1, #part do member[i + k - 1] = part[k] end
    redis.call('sadd', KEYS[3], unpack(members, i, j))
  end
  local add = {}
  for k = 1, #members do
    if member[k] == 0 then add[chars[k]] = (add[chars[k]] or 0) + 1 end
  end
  for c, d in pairs(add) do redis.call('hincrby', KEYS[4], c, d) end
end
local wm = redis.call('get', KEYS[5]) or '0'
local last = redis.call('incrby', KEYS[6], n)
local acked = redis.call('get', KEYS[7]) or '0'
return {1, e, tonumber(wm), last, tonumber(acked)}
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

/// KEYS: inflight, queue. ARGV: new batch id, max entries. Returns {id, entries joined by `\x1e`} ('' when
/// the queue is empty). The batch stays at the head of the queue (the in-flight hash records its id and
/// size) until [`ACK`] trims it: claiming copies nothing, and a syncer that died leaves the batch where the
/// next one finds it.
pub const CLAIM: &str = r#"
local cur = redis.call('hmget', KEYS[1], 'id', 'n')
local items
local id = ARGV[1]
if cur[1] then
  id = cur[1]
  items = redis.call('lrange', KEYS[2], 0, tonumber(cur[2]) - 1)
else
  items = redis.call('lrange', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  if #items == 0 then return {'', ''} end
  redis.call('hset', KEYS[1], 'id', id, 'n', #items)
end
return {id, table.concat(items, '\30')}
"#;

/// KEYS: inflight, rel, pending, then synced:<character> × m. ARGV: batch id, ttl ms, m, MySQL count × m
/// (for those characters), then (character, pair) × n — the batch's distinct pairs *of those characters*.
/// In one step, so that no read sees a pair both in a character's cached count and in its pending count:
/// raises the cached counts (never lowers them), removes the pairs from `rel` and, for each one that was
/// there, one from the character's pending count. Idempotent (a resumed batch may run it again). The
/// syncer calls it after the MySQL commit, in chunks that never split a character, before [`ACK`].
/// Returns 0 (and does nothing) when the batch is not the in-flight one.
pub const SETTLE: &str = r#"
if redis.call('hget', KEYS[1], 'id') ~= ARGV[1] then return 0 end
local m = tonumber(ARGV[3])
for j = 1, m do
  local cur = tonumber(redis.call('get', KEYS[3 + j]) or '-1')
  local total = tonumber(ARGV[3 + j])
  if total >= cur then redis.call('set', KEYS[3 + j], ARGV[3 + j], 'PX', ARGV[2]) end
end
local base = 3 + m
local n = (#ARGV - base) / 2
if n == 0 then return 1 end
local chars, members = {}, {}
for k = 1, n do
  chars[k] = ARGV[base + 2 * k - 1]
  members[k] = ARGV[base + 2 * k]
end
local member = {}
for i = 1, n, 1000 do
  local j = math.min(i + 999, n)
  local part = redis.call('smismember', KEYS[2], unpack(members, i, j))
  for k = 1, #part do member[i + k - 1] = part[k] end
  redis.call('srem', KEYS[2], unpack(members, i, j))
end
local drop = {}
for k = 1, n do
  if member[k] == 1 then drop[chars[k]] = (drop[chars[k]] or 0) + 1 end
end
for c, d in pairs(drop) do
  if redis.call('hincrby', KEYS[3], c, -d) <= 0 then redis.call('hdel', KEYS[3], c) end
end
return 1
"#;

/// KEYS: inflight, queue, acked, then wm:<src> × nsrc. ARGV: batch id, wm ttl ms, nsrc,
/// (first, last) × nsrc. Trims the batch off the queue, counts it as acknowledged, advances the
/// watermarks whose range continues them, ends the in-flight record. Returns 1, or 0 when the batch is
/// not the in-flight one.
pub const ACK: &str = r#"
local cur = redis.call('hmget', KEYS[1], 'id', 'n')
if cur[1] ~= ARGV[1] then return 0 end
local n = tonumber(cur[2])
redis.call('ltrim', KEYS[2], n, -1)
redis.call('incrby', KEYS[3], n)
local nsrc = tonumber(ARGV[3])
for j = 1, nsrc do
  local key = KEYS[3 + j]
  local first = tonumber(ARGV[2 + 2 * j])
  local wm = tonumber(redis.call('get', key) or '0')
  if first == wm + 1 then redis.call('set', key, ARGV[3 + 2 * j], 'PX', ARGV[2]) end
end
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
