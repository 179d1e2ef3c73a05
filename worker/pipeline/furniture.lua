-- Count one page's lines in its host's furniture table (pipeline/furniture.py).
--
-- KEYS[1]  the host's hash: '#pages' -> pages recorded; 8-byte line key -> record
-- ARGV     minute, ttl, max_lines, keep_lines, bonus, story (4 bytes), then key, snippet pairs
--
-- Record: stories u8, hits u16, first u32, last u32, minute u32 (little-endian),
-- the last 4 distinct story signatures (4 bytes each, newest first), the snippet.
-- At most 63 bytes and max_lines + 1 fields, so Redis keeps the hash in its
-- compact encoding (128 fields, 64-byte values); a hash that once grows past
-- that never goes back, so lines are evicted before new ones are inserted.
-- Eviction ranks a line by the page it was last seen on, plus `bonus` pages
-- per story beyond its first: recurring lines outlast the story lines of the
-- pages before, and lines no longer seen (a redesign) leave in time.
local key = KEYS[1]
local minute = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local max_lines = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local bonus = tonumber(ARGV[5])
local story = ARGV[6]
local PAGES = '#pages'
local HEAD, SIGS = 15, 16

local flat = redis.call('HGETALL', key)
local recs, count, pages = {}, 0, 0
for i = 1, #flat, 2 do
  if flat[i] == PAGES then
    pages = tonumber(flat[i + 1])
  else
    recs[flat[i]] = flat[i + 1]
    count = count + 1
  end
end
pages = pages + 1

local out, fresh = {}, 0
for i = 7, #ARGV, 2 do
  local f = ARGV[i]
  local rec = recs[f]
  if out[f] then
    -- a key twice in one call: counted once
  elseif rec then
    local stories, hits, first, last = struct.unpack('<BHII', rec)
    local sigs = string.sub(rec, HEAD + 1, HEAD + SIGS)
    local known = false
    for s = 1, SIGS, 4 do
      if string.sub(sigs, s, s + 3) == story then known = true end
    end
    if not known then
      stories = math.min(stories + 1, 255)
      sigs = story .. string.sub(sigs, 1, SIGS - 4)
    end
    if last ~= pages then hits = math.min(hits + 1, 65535) end
    out[f] = struct.pack('<BHIII', stories, hits, first, pages, minute) .. sigs .. string.sub(rec, HEAD + SIGS + 1)
  else
    out[f] = struct.pack('<BHIII', 1, 1, pages, pages, minute) .. story .. string.rep('\0', SIGS - 4) .. ARGV[i + 1]
    fresh = fresh + 1
  end
end

if count + fresh > max_lines then
  local ranked = {}
  for f, rec in pairs(recs) do
    if not out[f] then
      local stories, _, _, last = struct.unpack('<BHII', rec)
      ranked[#ranked + 1] = {last + bonus * (math.min(stories, 4) - 1), f}
    end
  end
  table.sort(ranked, function(a, b) return a[1] < b[1] end)
  local drop = {}
  for j = 1, math.min(#ranked, count + fresh - keep) do drop[j] = ranked[j][2] end
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
end

local args = {PAGES, pages}
for f, rec in pairs(out) do
  args[#args + 1] = f
  args[#args + 1] = rec
end
redis.call('HSET', key, unpack(args))
redis.call('EXPIRE', key, ttl)
return pages
