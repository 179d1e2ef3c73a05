-- Round trip 2: re-verify, record the decision and publish, all in one script
-- so a crash or a racing worker can never split them.
-- KEYS[1] url key, KEYS[2..] streams.
-- ARGV: ns, query hashes, max candidates, expected digest, window ms,
--   story id (8 bytes), record ('' = keep the stored one), log entry,
--   index hashes to add (packed, '' = none), max entries per hash,
--   then per stream: maxlen ('' = none), n, f1, v1 .. fn, vn
local ns = ARGV[1]
if gather(ns, KEYS[1], ARGV[2], tonumber(ARGV[3])) ~= ARGV[4] then
  return {'conflict'}
end
local ttl = tonumber(ARGV[5])
local sid, rec, log, index, cap = ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])

redis.call('SET', KEYS[1], sid, 'PX', ttl)
local skey = ns .. ':s:' .. sid
local exists = redis.call('EXISTS', skey) == 1
if rec ~= '' then
  if exists then redis.call('LSET', skey, 0, rec) else redis.call('RPUSH', skey, rec) end
  exists = true
end
if exists then
  redis.call('RPUSH', skey, log)
  redis.call('PEXPIRE', skey, ttl)
end

if index ~= '' then
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
    local key = bucket_key(ns, h)
    local v = redis.call('GET', key) or ''
    -- entries are appended in time order: drop the prefix older than the window
    if #v >= ENTRY and stamp_at(v, 1) < oldest then
      local cut = 1
      while cut <= #v and stamp_at(v, cut) < oldest do cut = cut + ENTRY end
      v = string.sub(v, cut)
      redis.call('SET', key, v)
    end
    local found, known = find_entries(v, h), false
    for _, p in ipairs(found) do
      if string.sub(v, p + 4, p + 4 + SID - 1) == sid then known = true end
    end
    -- a hot shingle keeps its first `cap` stories; the story's other hashes still index it
    if not known and #found < cap then redis.call('APPEND', key, h .. sid .. stamp) end
    redis.call('PEXPIRE', key, ttl)
  end
end

local ids = {}
local a = 11
local k = 2
while a <= #ARGV do
  local maxlen, n = ARGV[a], tonumber(ARGV[a + 1])
  local args = {KEYS[k]}
  if maxlen ~= '' then
    args[#args + 1] = 'MAXLEN'
    args[#args + 1] = '~'
    args[#args + 1] = maxlen
  end
  args[#args + 1] = '*'
  for j = 1, 2 * n do args[#args + 1] = ARGV[a + 1 + j] end
  ids[#ids + 1] = redis.call('XADD', unpack(args))
  a = a + 2 + 2 * n
  k = k + 1
end
return {'ok', ids}
