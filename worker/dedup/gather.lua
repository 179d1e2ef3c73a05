-- Shared by lookup.lua and commit.lua (prepended by store.py): read the keys a
-- decision depends on and fingerprint them, so the commit can prove nothing
-- changed since the lookup.
--
-- KEYS[1] url key, KEYS[2] content-hash key, KEYS[3 .. 2+nq] shingle index keys.
-- Story records (ns:s:<sid>) are read by name: the candidates are only known
-- here, and a second round trip would double the latency. Standalone Redis
-- only (not Cluster), which is what wire runs on.
local SID = 16  -- story ids are 16 hex characters, concatenated in index values

local function gather(ns, nq, maxc)
  local vals = redis.call('MGET', unpack(KEYS, 1, 2 + nq))
  local url_sid, hash_sid = vals[1], vals[2]
  local hits, order = {}, {}
  for i = 3, 2 + nq do
    local v = vals[i]
    if v then
      for j = 1, #v - SID + 1, SID do
        local sid = string.sub(v, j, j + SID - 1)
        if hits[sid] == nil then
          hits[sid] = 0
          order[#order + 1] = sid
        end
        hits[sid] = hits[sid] + 1
      end
    end
  end
  -- most shared index hashes first: the likeliest matches survive the cap
  table.sort(order, function(a, b)
    if hits[a] ~= hits[b] then return hits[a] > hits[b] end
    return a < b
  end)
  local cands = {}
  if url_sid then cands[#cands + 1] = url_sid end
  if hash_sid and hash_sid ~= url_sid then cands[#cands + 1] = hash_sid end
  for _, sid in ipairs(order) do
    if #cands >= maxc then break end
    if sid ~= url_sid and sid ~= hash_sid then cands[#cands + 1] = sid end
  end
  local recs, parts = {}, {}
  for i = 1, 2 + nq do parts[#parts + 1] = vals[i] or '\0' end
  for i, sid in ipairs(cands) do
    recs[i] = redis.call('GET', ns .. ':s:' .. sid) or false
    parts[#parts + 1] = sid
    parts[#parts + 1] = recs[i] or '\0'
  end
  return redis.sha1hex(table.concat(parts, '\1')), url_sid or '', hash_sid or '', cands, recs
end
