-- Shared by lookup.lua and commit.lua (prepended by store.py): read the keys a
-- decision depends on and fingerprint them, so the commit can prove nothing
-- changed since the lookup.
--
-- KEYS[1] url key. `query` is the document's smallest shingle hashes, 4 bytes
-- each, big-endian. The index lives in bucket strings ns:i:<15-bit bucket>
-- holding 16-byte entries (hash 4 | story id 8 | minute stamp 4); story lists
-- ns:s:<story id 8 bytes> hold the record at index 0, then the decision log.
-- Bucket and story keys are derived here, by name: the candidates are only
-- known here, and a second round trip would double the latency. Standalone
-- Redis only (not Cluster), which is what wire runs on.
local SID, ENTRY = 8, 16

local function bucket_key(ns, h)
  local b1, b2 = string.byte(h, 1, 2)
  return ns .. ':i:' .. string.format('%04x', b1 * 128 + math.floor(b2 / 2))
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
  local cache, hits, order = {}, {}, {}
  local parts = {url_sid or '\0'}
  for q = 1, #query - 3, 4 do
    local h = string.sub(query, q, q + 3)
    local key = bucket_key(ns, h)
    local v = cache[key]
    if v == nil then
      v = redis.call('GET', key) or ''
      cache[key] = v
    end
    local found = find_entries(v, h)
    parts[#parts + 1] = tostring(#found)
    for _, p in ipairs(found) do
      local sid = string.sub(v, p + 4, p + 4 + SID - 1)
      parts[#parts + 1] = sid
      if hits[sid] == nil then
        hits[sid] = 0
        order[#order + 1] = sid
      end
      hits[sid] = hits[sid] + 1
    end
  end
  -- most shared index hashes first: the likeliest matches survive the cap
  table.sort(order, function(a, b)
    if hits[a] ~= hits[b] then return hits[a] > hits[b] end
    return a < b
  end)
  local cands, recs = {}, {}
  local function try(sid)
    local rec = redis.call('LINDEX', ns .. ':s:' .. sid, 0)
    parts[#parts + 1] = sid
    parts[#parts + 1] = rec or '\0'
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
