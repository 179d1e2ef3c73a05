-- Round trip 1 (read-only): the candidates for one document and the digest of
-- everything they were derived from, and the namespace's commit epoch.
-- KEYS[1] url key. ARGV: ns, query hashes (packed), max candidates
local digest, url_sid, cands, recs = gather(ARGV[1], KEYS[1], ARGV[2], tonumber(ARGV[3]))
return {digest, url_sid, cands, recs, redis.call('GET', epoch_key(ARGV[1])) or ''}
