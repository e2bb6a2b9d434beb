-- Counts of what nginx decides itself (the native verifier, playgate_native.lua), for
-- Prometheus. The validator's /metrics counts only what reaches it; a native edge decides most
-- requests without it, so the edge serves its own counts (docs/nginx.md#metrics).
--
-- One shared dict holds every counter of this nginx: one atomic incr per decision (allows, the
-- hot path, are summed in the worker and added every FLUSH seconds), summed over workers by
-- construction, kept across reloads (a restart starts at 0: a counter reset, which
-- Prometheus's rate() handles). Keys are short (the incr hashes and compares the key: the whole
-- series text as key cost 0.7 µs per incr, one letter 0.07 µs; bench/native_counter.py): a
-- letter for the series family, then the label value. The scrape turns them into series.
-- Names and labels are the validator's (edge_validator/metrics.py) where the meaning
-- is the same: a deployment sums playgate_decisions_total over the edge and validator jobs
-- without counting a request twice (nginx counts only what it decided, the validator the rest).

local ngx = ngx
local concat = table.concat

local _M = {}

local dict

-- Keys: "a" an allow, "s" a session opened, "d<reason>" a deny, "f<why>" handed to the
-- validator, "c" the allows of the C fast path (counted in "a" too). Built once per reason
-- (reasons are a fixed set of short codes).
local ALLOW, OPENED, FAST = "a", "s", "c"

-- Each family: its key letter, the series text before and after the label value, its help.
local FAMILIES = {
    { "playgate_decisions_total", "counter",
        "Decisions the native verifier took in nginx, by outcome and reason",
        { a = { 'playgate_decisions_total{outcome="allow",reason="ok"}', "" },
          d = { 'playgate_decisions_total{outcome="deny",reason="', '"}' } } },
    { "playgate_sessions_renewed_total", "counter",
        "Playback sessions the native verifier opened in nginx",
        { s = { "playgate_sessions_renewed_total", "" } } },
    { "playgate_native_fast_allowed_total", "counter",
        "Allows the native verifier's C fast path decided (counted in playgate_decisions_total too)",
        { c = { "playgate_native_fast_allowed_total", "" } } },
    { "playgate_native_deferred_total", "counter",
        "Requests nginx handed to the validator, by why it did not decide them",
        { f = { 'playgate_native_deferred_total{reason="', '"}' } } },
}

-- init(dict name), in init_by_lua: counting needs nothing else.
function _M.init(name)
    dict = ngx.shared[name]
end

local function incr(key)
    -- Never fails a request: a full dict (1 MB holds thousands of series) only loses counts.
    dict:incr(key, 1, 0)
end

-- A counter with one label: its dict key is the prefix and the label, built once per label
-- (a concatenation per request would intern a new string every time).
local function labelled(prefix)
    local keys = {}
    return function(label)
        local key = keys[label]
        if key == nil then
            key = prefix .. label
            keys[label] = key
        end
        incr(key)
    end
end

-- Allows are counted in the worker and added to the dict every FLUSH seconds (and when the
-- worker exits): the dict's incr (a lock, a hash, a tree walk) cost each allowed request about
-- 1 % of nginx's work. A scrape sees them up to FLUSH seconds late.
local FLUSH = 0.2
local pending = 0
-- The C fast path's allows since the last flush (a function, set by the native verifier when
-- nginx loaded the module), or nil.
local fast_allowed = nil
-- Until the flush timer runs: once it cannot (not started, or the worker is exiting and it
-- ran its last time), allows go to the dict one by one, as before.
local batched = false

local function flush(premature)
    if premature then
        batched = false -- a draining worker may still allow requests: count them directly
    end
    if pending > 0 then
        dict:incr(ALLOW, pending, 0)
        pending = 0
    end
    local fast = fast_allowed and fast_allowed() or 0
    if fast > 0 then
        dict:incr(ALLOW, fast, 0)
        dict:incr(FAST, fast, 0)
    end
end

-- count_fast(take), in init_worker_by_lua: ``take()`` returns the C fast path's allows since
-- it was last called; each flush adds them.
function _M.count_fast(take)
    fast_allowed = take
end

-- init_worker(), in init_worker_by_lua: the worker's flush timer (its last run, when the
-- worker exits, adds what is left).
function _M.init_worker()
    local ok, err = ngx.timer.every(FLUSH, flush)
    if not ok then
        ngx.log(ngx.WARN, "playgate metrics: allows counted one by one (no timer: ", err, ")")
    end
    batched = ok and true or false
end

function _M.allowed()
    if batched then
        pending = pending + 1
    else
        incr(ALLOW)
    end
end

_M.denied = labelled("d")

-- A session opened in nginx is an allow and a session, as the validator counts it (gate.py).
function _M.opened()
    incr(ALLOW)
    incr(OPENED)
end

-- why: not_fresh (no trusted revocation view), cat, session_open, limits, shield.
_M.deferred = labelled("f")

-- The Prometheus text format (0.0.4) of every counter, plus the age of the revocation feed.
-- feed_age: seconds since the last complete feed poll, or nil (never polled).
function _M.expose(feed_age)
    local keys = dict:get_keys(0)
    table.sort(keys)
    local out, n = {}, 0
    for _, family in ipairs(FAMILIES) do
        local name, series = family[1], family[4]
        n = n + 1
        out[n] = "# HELP " .. name .. " " .. family[3] .. "\n# TYPE " .. name .. " "
            .. family[2] .. "\n"
        for _, key in ipairs(keys) do
            local text = series[key:sub(1, 1)]
            local value = text and dict:get(key)
            if value then
                n = n + 1
                out[n] = text[1] .. key:sub(2) .. text[2] .. " " .. string.format("%d", value)
                    .. "\n"
            end
        end
    end
    n = n + 1
    out[n] = "# HELP playgate_native_feed_age_seconds Seconds since nginx last read the "
        .. "revocation feed (+Inf: never)\n# TYPE playgate_native_feed_age_seconds gauge\n"
        .. "playgate_native_feed_age_seconds "
        .. (feed_age and string.format("%.3f", feed_age) or "+Inf") .. "\n"
    ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(concat(out))
end

return _M
