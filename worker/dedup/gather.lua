-- Shared by lookup.lua, commit.lua and load.lua (prepended by store.py):
-- `gather` reads the keys a decision depends on and fingerprints them, so the
-- commit can prove nothing changed since the lookup; `record` and
-- `add_index` write a decision (the commit and the bulk loader share them).
--
-- KEYS[1] url key. `query` is the document's smallest shingle hashes, 4 bytes
-- each (store.packed: big-endian, top two bytes swapped). The index lives in bucket strings ns:i:<low 15 bits of the hash>
-- holding 16-byte entries (hash 4 | story id 8 | minute stamp 4); story lists
-- ns:s:<story id 8 bytes> hold the record at index 0, then the decision log.
-- Bucket and story keys are derived here, by name: the candidates are only
-- known here, and a second round trip would double the latency. Standalone
-- Redis only (not Cluster), which is what wire runs on.
local SID, ENTRY = 8, 16

-- ns:epoch counts the commits that wrote the namespace: a commit that finds it
-- unchanged since its lookup knows nothing the lookup read has changed, and
-- skips re-reading it (the common case: no other worker committed in between)
local function epoch_key(ns) return ns .. ':epoch' end

local function bump_epoch(ns, ttl)
  local k = epoch_key(ns)
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, ttl)
end

-- The index: 2**15 hash keys ns:i:<bits 1-15 of the shingle hash, 2 raw bytes>,
-- each of up to 16 fields <bit 0 and bits 16-18, 1 raw byte> holding that
-- sub-bucket's 16-byte entries. A lookup reads one field per query hash, so its
-- cost does not grow with the store (a field holds ~10 entries at 1M stories),
-- and the 2**19 sub-buckets share 2**15 keys (a key costs ~165 bytes; a field
-- in a small hash a few). Indexed hashes are the smallest of their text, so
-- their high bits are mostly 0: the low bits name the bucket.
local function bucket_of(ns, h)
  local b1, _, b3, b4 = string.byte(h, 1, 4)
  return ns .. ':i:' .. string.char(b3, b4 - b4 % 2), string.char(b4 % 2 * 8 + b1 % 8)
end

-- start positions of the entries for hash h in bucket string v
local function find_entries(v, h)
  local out, i = {}, 1
  while true do
    local p = string.find(v, h, i, true)
    if not p then return out end
    if (p - 1) % ENTRY == 0 then
      out[#out + 1] = p
      i = p + ENTRY
    else
      i = p + 1
    end
  end
end

local function gather(ns, url_key, query, maxc)
  local url_sid = redis.call('GET', url_key)
  local score, order = {}, {}
  local parts = {url_sid or '\0'}
  for q = 1, #query - 3, 4 do
    local h = string.sub(query, q, q + 3)
    local v = redis.call('HGET', bucket_of(ns, h))
    local found = {}
    if v then
      local j = 1
      while true do
        local p = string.find(v, h, j, true)
        if not p then break end
        if (p - 1) % ENTRY == 0 then
          local sid = string.sub(v, p + 4, p + 4 + SID - 1)
          found[#found + 1] = sid
          parts[#parts + 1] = sid
          j = p + ENTRY
        else
          j = p + 1
        end
      end
    end
    parts[#parts + 1] = #found
    -- a hash shared by n stories is weak evidence for each: 1/n (chance hits on
    -- common phrases must not crowd out a real copy that shares one rare hash)
    for _, sid in ipairs(found) do
      local c = score[sid]
      if c == nil then
        order[#order + 1] = sid
        c = 0
      end
      score[sid] = c + 1 / #found
    end
  end
  -- the best 2 * maxc by (score, then id): a bounded insertion, not a sort of
  -- every id a common phrase brought in
  local top, k = {}, 2 * maxc
  for _, sid in ipairs(order) do
    local sc = score[sid]
    local n = #top
    if n < k or sc > score[top[n]] or (sc == score[top[n]] and sid < top[n]) then
      local i = n < k and n + 1 or n
      while i > 1 and (score[top[i - 1]] < sc or (score[top[i - 1]] == sc and top[i - 1] > sid)) do
        top[i] = top[i - 1]
        i = i - 1
      end
      top[i] = sid
    end
  end
  order = top
  local cands, recs = {}, {}
  local function try(sid)
    local rec = redis.call('LINDEX', ns .. ':s:' .. sid, 0)
    parts[#parts + 1] = sid
    -- the header (version, counts, content hash) changes whenever the record does
    parts[#parts + 1] = rec and string.sub(rec, 1, 33) or '\0'
    if rec then
      cands[#cands + 1] = sid
      recs[#recs + 1] = rec
    end
  end
  if url_sid then try(url_sid) end
  -- index entries may outlive their story (trimmed lazily): skip expired ones, within a bound
  local tries = 0
  for _, sid in ipairs(order) do
    if #cands >= maxc or tries >= 2 * maxc then break end
    if sid ~= url_sid then
      try(sid)
      tries = tries + 1
    end
  end
  return redis.sha1hex(table.concat(parts, '\1')), url_sid or '', cands, recs
end

-- The decision log keeps a story's newest `cap` decisions. Once it is full,
-- the entry after the record counts the decisions dropped, as a JSON object
-- ({"dropped":n}; decisions are JSON arrays), and each new decision pushes
-- the oldest out: the record and the count stay in place, nothing is copied.
local DROPPED = '\0dropped\0'
local function trim_log(skey, n, cap)
  local head = redis.call('LINDEX', skey, 1)
  local counted = string.sub(head, 1, 1) == '{'
  local dropped = counted and tonumber(string.match(head, '%d+')) or 0
  local first = counted and 2 or 1
  local over = n - first - cap
  if over <= 0 then return end
  if not counted then
    -- the oldest decision becomes the count
    dropped, over = 1, over - 1
  end
  for _ = 1, over do
    redis.call('LSET', skey, 2, DROPPED)
    redis.call('LREM', skey, 1, DROPPED)
    dropped = dropped + 1
  end
  redis.call('LSET', skey, 1, '{"dropped":' .. dropped .. '}')
end

-- URL key -> story; the story list: record at index 0 ('' keeps the stored
-- one), then the decision log (at most `cap` decisions)
local function record(ns, url_key, sid, rec, log, ttl, cap)
  redis.call('SET', url_key, sid, 'PX', ttl)
  local skey = ns .. ':s:' .. sid
  local exists = redis.call('EXISTS', skey) == 1
  if rec ~= '' then
    if exists then redis.call('LSET', skey, 0, rec) else redis.call('RPUSH', skey, rec) end
    exists = true
  end
  if exists then
    local n = redis.call('RPUSH', skey, log)
    redis.call('PEXPIRE', skey, ttl)
    if n - 1 > cap then trim_log(skey, n, cap) end
  end
end

-- append index entries (hash | sid | minute stamp) for the packed hashes
local function add_index(ns, index, sid, ttl, cap)
  if index == '' then return end
  local now = math.floor(tonumber(redis.call('TIME')[1]) / 60)
  local oldest = now - math.ceil(ttl / 60000)
  local stamp = string.char(math.floor(now / 16777216) % 256, math.floor(now / 65536) % 256,
    math.floor(now / 256) % 256, now % 256)
  local function stamp_at(v, p)
    local a, b, c, d = string.byte(v, p + 12, p + 15)
    return ((a * 256 + b) * 256 + c) * 256 + d
  end
  for q = 1, #index - 3, 4 do
    local h = string.sub(index, q, q + 3)
    local key, field = bucket_of(ns, h)
    local v = redis.call('HGET', key, field) or ''
    -- entries are appended in time order: drop the prefix older than the window
    local changed = false
    if #v >= ENTRY and stamp_at(v, 1) < oldest then
      local cut = 1
      while cut <= #v and stamp_at(v, cut) < oldest do cut = cut + ENTRY end
      v = string.sub(v, cut)
      changed = true
    end
    local found, known = find_entries(v, h), false
    for _, p in ipairs(found) do
      if string.sub(v, p + 4, p + 4 + SID - 1) == sid then known = true end
    end
    -- a hot shingle keeps its first `cap` stories; the story's other hashes still index it
    if not known and #found < cap then
      v = v .. h .. sid .. stamp
      changed = true
    end
    if changed then
      if #v > 0 then redis.call('HSET', key, field, v) else redis.call('HDEL', key, field) end
    end
    -- a key nobody writes expires whole after the window
    redis.call('PEXPIRE', key, ttl)
  end
end

-- Write a decision: record it, index a new version, bump the epoch and XADD
-- its stream entries. ARGV from `a` on: window ms, story id (8 bytes), record
-- ('' = keep the stored one), log entry, index hashes (packed, '' = none), max
-- entries per hash, max decisions logged, then per stream (KEYS[2..]): maxlen
-- ('' = none), n, f1, v1 .. fn, vn. Returns the stream entry ids.
local function write(ns, keys, argv, a)
  local ttl = tonumber(argv[a])
  local sid = argv[a + 1]
  record(ns, keys[1], sid, argv[a + 2], argv[a + 3], ttl, tonumber(argv[a + 6]))
  add_index(ns, argv[a + 4], sid, ttl, tonumber(argv[a + 5]))
  bump_epoch(ns, ttl)
  local ids = {}
  local k = 2
  a = a + 7
  while a <= #argv do
    local maxlen, n = argv[a], tonumber(argv[a + 1])
    local args = {keys[k]}
    if maxlen ~= '' then
      args[#args + 1] = 'MAXLEN'
      args[#args + 1] = '~'
      args[#args + 1] = maxlen
    end
    args[#args + 1] = '*'
    for j = 1, 2 * n do args[#args + 1] = argv[a + 1 + j] end
    ids[#ids + 1] = redis.call('XADD', unpack(args))
    a = a + 2 + 2 * n
    k = k + 1
  end
  return ids
end
