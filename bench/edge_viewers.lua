-- wrk script for bench/edge.py: N viewers playing one HLS video, as concurrent players do.
-- Arguments: <viewer file> <N> <offset> [playing]. The viewer file has one line per viewer: the path
-- prefix of the first step (the start token) and of the others (the session token), "-" for
-- none. Request j is viewer v = (j mod N)'s step ((j div N + v) mod 13): every viewer comes
-- back once every N requests for its next step, any N consecutive requests hold the same mix of
-- steps, and a round starts where the configuration's last round stopped. With "playing", the
-- first step (the request that opens playback) is left out: viewers already watching.
--
-- The client runs on the edge's machine, so its own cost must not grow with N: the prefixes
-- live in one C buffer (outside wrk's Lua heap), and each request is one new Lua string. Kept
-- as 2N Lua strings (and built with wrk.format), wrk's collector and string table walked the
-- whole set: at N = 100,000 with PlayGate's tokens 33,000 instructions and 33 last-level cache
-- misses per request against 20,000 and 2 at N = 20,000 (callgrind), cache traffic that the
-- edge on the other core paid for too:
-- docs/performance.md#why-native-fell-behind-at-high-n-branch-native-scale-2026-12-03

local ffi = require("ffi")

local steps = {"master.m3u8", "master.m3u8", "v0/index.m3u8"}
for i = 0, 9 do steps[#steps + 1] = string.format("v0/seg_%03d.ts", i) end

local n, j = 0, 0
local opening = true
local blob, at -- every prefix in one buffer; prefix k (0-based) is blob[at[k] .. at[k+1])
local buf -- one request is assembled here
local tails, tail_len = {}, {} -- per step: the rest of the request after the prefix

function init(args)
  local parts, starts, pos = {}, {}, 0
  for line in io.lines(args[1]) do
    local a, b = line:match("^(%S+) (%S+)$")
    n = n + 1
    for i, prefix in ipairs({ a, b }) do
      prefix = (prefix == "-") and "" or prefix
      parts[2 * n - 2 + i] = prefix
      starts[2 * n - 2 + i] = pos
      pos = pos + #prefix
    end
  end
  assert(n == tonumber(args[2]), "viewer file and N disagree")
  j = tonumber(args[3])
  if args[4] == "playing" then
    table.remove(steps, 1)
    opening = false
  end
  blob = ffi.new("char[?]", pos + 1)
  ffi.copy(blob, table.concat(parts), pos)
  at = ffi.new("int32_t[?]", 2 * n + 1)
  local widest = 0
  for k = 1, 2 * n do
    at[k - 1] = starts[k]
    widest = math.max(widest, #parts[k])
  end
  at[2 * n] = pos
  -- What wrk.format("GET", path) sends: the request line and wrk's Host header.
  local longest = 0
  for i, step in ipairs(steps) do
    tails[i] = "/videos/bench/" .. step .. " HTTP/1.1\r\nHost: " .. wrk.headers["Host"]
      .. "\r\n\r\n"
    tail_len[i] = #tails[i]
    longest = math.max(longest, tail_len[i])
  end
  buf = ffi.new("char[?]", 4 + widest + longest)
  ffi.copy(buf, "GET ", 4)
  parts, starts = nil, nil
  collectgarbage()
end

function request()
  local v = j % n
  local step = (math.floor(j / n) + v) % #steps + 1
  j = j + 1
  local k = (opening and step == 1) and 2 * v or 2 * v + 1
  local from, len = at[k], at[k + 1] - at[k]
  ffi.copy(buf + 4, blob + from, len)
  ffi.copy(buf + 4 + len, tails[step], tail_len[step])
  return ffi.string(buf, 4 + len + tail_len[step])
end
