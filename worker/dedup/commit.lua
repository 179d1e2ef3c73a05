-- Round trip 2: re-verify, record the decision and publish, all in one script
-- so a crash or a racing worker can never split them.
-- KEYS[1] url key, KEYS[2..] streams.
-- ARGV: ns, query hashes, max candidates, expected digest, the epoch the
--   lookup saw ('' = none), then the decision as `write` takes it
local ns = ARGV[1]
-- another commit since the lookup: re-read what the decision rests on and
-- compare its digest (a commit elsewhere in the index leaves it unchanged)
if (redis.call('GET', epoch_key(ns)) or '') ~= ARGV[5]
    and gather(ns, KEYS[1], ARGV[2], tonumber(ARGV[3])) ~= ARGV[4] then
  return {'conflict'}
end
return {'ok', write(ns, KEYS, ARGV, 6)}
