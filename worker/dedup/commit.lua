-- Round trip 2: re-verify, record the decision and publish, all in one script
-- so a crash or a racing worker can never split them.
-- KEYS: the lookup's read keys (2 + nq), then the keys written by the ops.
-- ARGV: ns, nq, max candidates, expected digest, window ms, then ops:
--   S i value          SET KEYS[i] value PX window
--   A i value maxbytes APPEND (index values: keep the newest maxbytes) + PEXPIRE
--   L i value          RPUSH + PEXPIRE (decision logs)
--   E i                PEXPIRE (keep a story alive while copies keep arriving)
--   X i maxlen n f1 v1 .. fn vn   XADD KEYS[i] [MAXLEN ~ maxlen] * fields
local digest = gather(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
if digest ~= ARGV[4] then
  return {'conflict'}
end
local ttl = ARGV[5]
local ids = {}
local a = 6
while a <= #ARGV do
  local op, key = ARGV[a], KEYS[tonumber(ARGV[a + 1])]
  if op == 'S' then
    redis.call('SET', key, ARGV[a + 2], 'PX', ttl)
    a = a + 3
  elseif op == 'A' then
    local len = redis.call('APPEND', key, ARGV[a + 2])
    local cap = tonumber(ARGV[a + 3])
    if len > cap then
      redis.call('SET', key, redis.call('GETRANGE', key, -cap, -1))
    end
    redis.call('PEXPIRE', key, ttl)
    a = a + 4
  elseif op == 'L' then
    redis.call('RPUSH', key, ARGV[a + 2])
    redis.call('PEXPIRE', key, ttl)
    a = a + 3
  elseif op == 'E' then
    redis.call('PEXPIRE', key, ttl)
    a = a + 2
  elseif op == 'X' then
    local maxlen, n = ARGV[a + 2], tonumber(ARGV[a + 3])
    local args = {key}
    if maxlen ~= '' then
      args[#args + 1] = 'MAXLEN'
      args[#args + 1] = '~'
      args[#args + 1] = maxlen
    end
    args[#args + 1] = '*'
    for j = 1, 2 * n do args[#args + 1] = ARGV[a + 3 + j] end
    ids[#ids + 1] = redis.call('XADD', unpack(args))
    a = a + 4 + 2 * n
  else
    return redis.error_reply('dedup commit: unknown op ' .. tostring(op))
  end
end
return {'ok', ids}
