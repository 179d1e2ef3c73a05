-- Bulk load (benchmarks, backfills): record new stories without a lookup or
-- a digest check, through the same `record` and `add_index` as the commit.
-- ARGV: ns, window ms, max entries per hash, max decisions logged, then per story:
--   url key, story id (8 bytes), record, log entry, index hashes (packed)
local ns, ttl, cap, logcap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for a = 5, #ARGV, 5 do
  record(ns, ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ttl, logcap)
  add_index(ns, ARGV[a + 4], ARGV[a + 1], ttl, cap)
end
bump_epoch(ns, ttl)
return (#ARGV - 4) / 5
