-- wrk script for bench/edge.py: N viewers playing one HLS video, as concurrent players do.
-- Arguments: <viewer file> <N> <offset> [playing]. The viewer file has one line per viewer: the path
-- prefix of the first step (the start token) and of the others (the session token), "-" for
-- none. Request j is viewer v = (j mod N)'s step ((j div N + v) mod 13): every viewer comes
-- back once every N requests for its next step, any N consecutive requests hold the same mix of
-- steps, and a round starts where the configuration's last round stopped. With "playing", the
-- first step (the request that opens playback) is left out: viewers already watching.

local steps = {"master.m3u8", "master.m3u8", "v0/index.m3u8"}
for i = 0, 9 do steps[#steps + 1] = string.format("v0/seg_%03d.ts", i) end

local first, rest = {}, {}
local n, j = 0, 0
local opening = true

function init(args)
  for line in io.lines(args[1]) do
    local a, b = line:match("^(%S+) (%S+)$")
    n = n + 1
    first[n] = (a == "-") and "" or a
    rest[n] = (b == "-") and "" or b
  end
  assert(n == tonumber(args[2]), "viewer file and N disagree")
  j = tonumber(args[3])
  if args[4] == "playing" then
    table.remove(steps, 1)
    opening = false
  end
end

function request()
  local v = j % n
  local viewer = v + 1
  local step = (math.floor(j / n) + v) % #steps + 1
  j = j + 1
  local prefix = (opening and step == 1) and first[viewer] or rest[viewer]
  return wrk.format("GET", prefix .. "/videos/bench/" .. steps[step])
end
