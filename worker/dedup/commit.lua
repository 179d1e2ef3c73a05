-- Round trip 2: re-verify, record the decision and publish, all in one script
-- so a crash or a racing worker can never split them.
-- KEYS[1] url key, KEYS[2..] streams.
-- ARGV: ns, query hashes, max candidates, expected digest, window ms,
--   story id (8 bytes), record ('' = keep the stored one), log entry,
--   index hashes to add (packed, '' = none), max entries per hash,
--   the epoch the lookup saw ('' = none), then per stream: maxlen ('' = none), n, f1, v1 .. fn, vn
local ns = ARGV[1]
-- another commit since the lookup: re-read what the decision rests on and
-- compare its digest (a commit elsewhere in the index leaves it unchanged)
if (redis.call('GET', epoch_key(ns)) or '') ~= ARGV[11]
    and gather(ns, KEYS[1], ARGV[2], tonumber(ARGV[3])) ~= ARGV[4] then
  return {'conflict'}
end
local ttl = tonumber(ARGV[5])
local sid, rec, log, index, cap = ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])

record(ns, KEYS[1], sid, rec, log, ttl)
add_index(ns, index, sid, ttl, cap)
bump_epoch(ns, ttl)

local ids = {}
local a = 12
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
