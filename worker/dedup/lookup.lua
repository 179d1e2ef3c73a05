-- Round trip 1 (read-only): the candidates for one document and the digest of
-- everything they were derived from.
-- ARGV: ns, nq, max candidates
local digest, url_sid, hash_sid, cands, recs = gather(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return {digest, url_sid, hash_sid, cands, recs}
