-- PlayGate's native verifier: the PlayGate token check inside nginx (ngx_http_lua), so the
-- common request (a segment fetched with a v1/v2 start token or a session token) is decided
-- without the auth_request hop to the Python validator.
--
-- It is a port of edge_validator/core/{paths,token,keyring,decision,sessions}.py and must agree with
-- them on every input (tests/e2e/test_nginx_native.py runs both against the vectors and
-- against thousands of random and mutated tokens). Anything it does not decide itself goes to
-- the Python validator, as before: tokens with use or stream limits, a start token that would
-- open a playback session where no redirect can be answered (the shield location opens it here,
-- open_session), CTA-5007 tokens, and every request while its revocation view is not known to be
-- fresh (deny by default: "not sure" is never "allow").
--
-- Revocations: worker 0 polls the validator's feed (/_playgate/native-feed) every POLL
-- seconds and writes them into the shared dict; a view older than FRESH seconds is not used
-- while the validator answers, and past that the validator's failure policy decides.

local ffi = require("ffi")
local cjson = require("cjson.safe")
-- ngx.base64 also declares nginx's ngx_decode_base64url for the FFI (b64url_into).
local encode_base64url = require("ngx.base64").encode_base64url
local metrics = require("playgate_metrics")

local byte, sub, find, char, lower = string.byte, string.sub, string.find, string.char, string.lower
local band, bor = bit.band, bit.bor
local concat = table.concat
local ngx = ngx

local _M = {}

-- The wire contract (edge_validator/core/protocol.py, keyring.py); rendered values are passed
-- to init() by the template, these are fixed by the token format.
local TOKEN_CONTEXT = "PlayGate playback token\0"
local SESSION_CONTEXT = "PlayGate session token\0"
local FEED_CONTEXT = "PlayGate native feed\0"
local PURPOSE = "playgate/playback-token/mac-key/v1"
local MAC_BYTES = 32
local MIN_KEY_BYTES = 32
local FEED_VERSION = "PLAYGATE-FEED 1"
-- The manifest suffixes is_manifest knows (protocol.MANIFEST_SUFFIXES, as rendered).
local KNOWN_SUFFIXES = ".m3u8,.mpd"

ffi.cdef([[
typedef struct {
    unsigned int h[8];
    unsigned int Nl, Nh;
    unsigned int data[16];
    unsigned int num, md_len;
} playgate_sha256_ctx;
int SHA256_Init(playgate_sha256_ctx *c);
int SHA256_Update(playgate_sha256_ctx *c, const void *data, size_t len);
int SHA256_Final(unsigned char *md, playgate_sha256_ctx *c);
int CRYPTO_memcmp(const void *a, const void *b, size_t len);
int inet_pton(int af, const char *src, void *dst);
int RAND_bytes(unsigned char *buf, int num);
size_t strspn(const char *s, const char *accept);
int memcmp(const void *a, const void *b, size_t n);
void free(void *ptr);
void *calloc(size_t nmemb, size_t size);
typedef struct {
    uint16_t len;
    uint8_t session;
    uint8_t net_at, net_len;
    uint8_t at[8];
    uint8_t recent; /* in a set's first slot: the way used last (the other goes next) */
    uint8_t unused[2];
    uint32_t max_uses, session_seconds;
    uint16_t max_streams;
    uint32_t clean; /* the feed's count of revocations when this token was last found in none */
    double expires_at, not_before;
    uint8_t bytes[188];
} playgate_memo_slot;
]])

-- The C fast path (playgate/nginx/module/ngx_http_playgate_module.c), when nginx loaded it:
-- it allows the common request before this verifier runs, with what this file tells it.
ffi.cdef([[
void playgate_fast_reset(void);
int playgate_fast_add_key(const char *kid, size_t kid_len, const void *start,
    const void *session, const void *outer, size_t state_bytes);
void playgate_fast_policy(int usable, double until, double leeway, double max_ttl,
    double max_session, int cat, int manifest_flag, void *zone, void *meta,
    const char *generation, size_t generation_len);
int playgate_fast_memo(size_t slots);
void playgate_fast_counts(uint64_t *memo_hits, uint64_t *lookups_skipped);
uint64_t playgate_fast_take_allowed(void);
int playgate_fast_judge(const char *target, size_t len, const char *client,
    size_t client_len, double now, double leeway, double max_ttl, double max_session, int cat,
    unsigned char *tid, size_t *tid_len);
]])
local fast = pcall(function() return ffi.C.playgate_fast_policy end) and ffi.C or nil

-- nginx links libcrypto itself; load it by name only where the symbols are not global.
local crypto = ffi.C
if not pcall(function() return crypto.SHA256_Init end) then
    crypto = ffi.load("libcrypto.so.3")
end
local C = ffi.C
local SHA256_CTX_BYTES = ffi.sizeof("playgate_sha256_ctx")
local sha_ctx = ffi.new("playgate_sha256_ctx")
local mac_out = ffi.new("unsigned char[32]")
local addr_buf = ffi.new("unsigned char[16]")
local rand_buf = ffi.new("unsigned char[12]")
local AF_INET, AF_INET6 = 2, 10

-- --- HMAC-SHA256 (RFC 2104) on OpenSSL's SHA-256 -----------------------------------------------
-- A key's inner and outer states are computed once (at load), so a token's MAC costs the
-- SHA-256 blocks of its body and one more, with no allocation: OpenSSL 3's one-shot HMAC()
-- fetches the algorithm on every call (about 1.4 µs against 0.3).

-- The inner and outer SHA-256 states of ``key`` (the context after its padded block).
local function hmac_states(key)
    if #key > 64 then
        local long = ffi.new("playgate_sha256_ctx")
        crypto.SHA256_Init(long)
        crypto.SHA256_Update(long, key, #key)
        crypto.SHA256_Final(mac_out, long)
        key = ffi.string(mac_out, 32)
    end
    local states = {}
    for i, pad in ipairs({ 0x36, 0x5c }) do
        local block = ffi.new("unsigned char[64]")
        for j = 0, 63 do
            block[j] = bit.bxor(byte(key, j + 1) or 0, pad)
        end
        local state = ffi.new("playgate_sha256_ctx")
        crypto.SHA256_Init(state)
        crypto.SHA256_Update(state, block, 64)
        states[i] = state
    end
    return states[1], states[2]
end

-- The MAC of ``len`` bytes at ``data`` (a string or a pointer) into mac_out; ``inner`` may
-- already hold a prefix of the message (a context string).
local function mac_into(inner, outer, data, len)
    ffi.copy(sha_ctx, inner, SHA256_CTX_BYTES)
    crypto.SHA256_Update(sha_ctx, data, len)
    crypto.SHA256_Final(mac_out, sha_ctx)
    ffi.copy(sha_ctx, outer, SHA256_CTX_BYTES)
    crypto.SHA256_Update(sha_ctx, mac_out, 32)
    crypto.SHA256_Final(mac_out, sha_ctx)
end

-- The inner state of ``inner`` after ``prefix``: a token kind's context, absorbed once.
local function absorbed(inner, prefix)
    local state = ffi.new("playgate_sha256_ctx")
    ffi.copy(state, inner, SHA256_CTX_BYTES)
    crypto.SHA256_Update(state, prefix, #prefix)
    return state
end

local function hmac(key, data)
    local inner, outer = hmac_states(key)
    mac_into(inner, outer, data, #data)
    return ffi.string(mac_out, 32)
end

local function to_hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", byte(c)) end))
end

-- Settings given by the template (init) and the key ring, loaded in the master.
local conf = {}
local keys = {}  -- key id -> {key = derived MAC key, start, session, outer = HMAC states}
local key_probes = ""  -- what the feed must report for this ring ("kid:probe,...")
local key_error = nil
-- This configuration's load (init runs in the master at start and at every reload). The
-- shared dicts outlive a reload, so what the feed state says is used only when a poller of
-- this load wrote it: an older load's "native" was judged against its own key ring and its
-- own revocation dict (which a new native_dict_size replaces with an empty one).
local generation = "-"

-- --- base64url, canonical only (token.py _decode_b64) ----------------------------------------

local MAX_TOKEN_CHARS = 2048
-- The last characters that leave no unused bit set, by length mod 4.
local LAST_OK = { [2] = {}, [3] = {} }
for rem, chars in pairs({ [2] = "AQgw", [3] = "AEIMQUYcgkosw048" }) do
    for i = 1, #chars do
        LAST_OK[rem][byte(chars, i)] = true
    end
end
local b64_src = ffi.new("ngx_str_t[1]")
local b64_dst = ffi.new("ngx_str_t[1]")
local token_buf = ffi.new("unsigned char[?]", MAX_TOKEN_CHARS / 4 * 3)

-- Decode a canonical base64url string into ``buf``: the byte count, or nil. Canonical: every
-- character of the alphabet, no padding, a length that is not 1 mod 4, and zero unused bits in
-- the last character. nginx's decoder refuses any other character (a NUL too) and a length of
-- 1 mod 4, but stops at the first "=" and decodes what precedes it: the bytes it gives are
-- those of all ``n`` characters (3 per 4, and 1 or 2 for the last 2 or 3) only when there is
-- no "=" (fewer characters always give fewer bytes), so that count is checked too.
local function b64url_into(s, buf)
    local n = #s
    local rem = n % 4
    if rem == 1 then
        return nil
    end
    local last = LAST_OK[rem]
    if last and not last[byte(s, n)] then
        return nil
    end
    local src, dst = b64_src[0], b64_dst[0]
    src.data, src.len = s, n
    dst.data, dst.len = buf, 0
    if C.ngx_decode_base64url(b64_dst, b64_src) ~= 0 then
        return nil
    end
    local len = tonumber(dst.len)
    if len ~= (n - rem) / 4 * 3 + (rem == 0 and 0 or rem - 1) then
        return nil -- a "=" cut it short
    end
    return len
end

local function b64url_decode(s)
    local buf = ffi.new("unsigned char[?]", #s)
    local n = b64url_into(s, buf)
    return n and ffi.string(buf, n)
end

-- --- the key ring (keyring.py) ---------------------------------------------------------------

local function load_keyring(path)
    local f, err = io.open(path, "rb")
    if not f then
        return nil, "cannot read the key ring file: " .. tostring(err)
    end
    local text = f:read("*a")
    f:close()
    local doc = cjson.decode(text)
    if type(doc) ~= "table" or type(doc.keys) ~= "table" then
        return nil, "the key ring needs a \"keys\" object"
    end
    local ring, ids = {}, {}
    for kid, secret in pairs(doc.keys) do
        if type(kid) ~= "string" or not ngx.re.find(kid, "^[A-Za-z0-9_-]{1,32}$", "jo") then
            return nil, "bad key id"
        end
        if type(secret) ~= "string" then
            return nil, "a key secret is not a string"
        end
        local raw = b64url_decode((secret:gsub("=+$", "")))
        if raw == nil or #raw < MIN_KEY_BYTES then
            return nil, "a key secret is not canonical base64url of at least 32 bytes"
        end
        local key = hmac(raw, PURPOSE)
        local inner, outer = hmac_states(key)
        -- Each token kind's context is absorbed once: a MAC then hashes the body alone.
        ring[kid] = {
            key = key,
            start = absorbed(inner, TOKEN_CONTEXT),
            session = absorbed(inner, SESSION_CONTEXT),
            outer = outer,
        }
        ids[#ids + 1] = kid
    end
    if #ids == 0 then
        return nil, "the key ring holds no key"
    end
    table.sort(ids)
    local probes = {}
    for i, kid in ipairs(ids) do
        probes[i] = kid .. ":" .. to_hex(hmac(ring[kid].key, FEED_CONTEXT .. "key-check"))
    end
    return ring, concat(probes, ",")
end

-- init({keyring_file=, dict=, validators={"127.0.0.1:8000", ...}}), in init_by_lua.
function _M.init(options)
    conf = options
    conf.manifest_flag = options.manifest_suffixes == KNOWN_SUFFIXES
    metrics.init(options.metrics_dict)
    -- The poller connects to addresses: host names resolved now, as the upstream's are.
    options.validators = require("playgate_resolve").addresses(options.validators)
    local urandom = io.open("/dev/urandom", "rb")
    generation = to_hex(urandom:read(8))
    urandom:close()
    local ring, probes = load_keyring(options.keyring_file)
    if ring == nil then
        -- Never fatal: every request then goes to the Python validator, which says why.
        key_error = probes
        keys, key_probes = {}, ""
        return
    end
    keys, key_probes, key_error = ring, probes, nil
end

-- --- paths (paths.py) ------------------------------------------------------------------------

local HEX = {}
for c in ("0123456789abcdefABCDEF"):gmatch(".") do
    HEX[byte(c)] = true
end
-- Bytes whose escape is refused (paths._NO_ESCAPE).
local NO_ESCAPE = {}
do
    local plain = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/\\%?#;\127"
    for i = 1, #plain do
        NO_ESCAPE[byte(plain, i)] = true
    end
    for b = 0, 31 do
        NO_ESCAPE[b] = true
    end
    for b = 128, 255 do
        NO_ESCAPE[b] = true
    end
end

-- What a raw path may hold: printable ASCII without space (0x21-0x7e) or backslash.
local PATH_CHARS = {}
for b = 0x21, 0x7e do
    if b ~= 0x5c then
        PATH_CHARS[#PATH_CHARS + 1] = char(b)
    end
end
PATH_CHARS = concat(PATH_CHARS)

-- The decoded path, or nil (bad_path). Never repairs.
local function normalize_path(path)
    if byte(path, 1) ~= 47 then
        return nil
    end
    -- printable ASCII without space (0x21-0x7e), and no backslash
    if tonumber(C.strspn(path, PATH_CHARS)) ~= #path then
        return nil
    end
    if find(path, "//", 1, true) or find(path, ";", 1, true) then
        return nil
    end
    local decoded = path
    if find(path, "%", 1, true) then
        local parts, n, pos = {}, 0, 1
        while true do
            local at = find(path, "%", pos, true)
            if at == nil then
                break
            end
            local h1, h2 = byte(path, at + 1), byte(path, at + 2)
            if not (h1 and h2 and HEX[h1] and HEX[h2]) then
                return nil
            end
            local value = tonumber(sub(path, at + 1, at + 2), 16)
            if NO_ESCAPE[value] then
                return nil
            end
            n = n + 1
            parts[n] = sub(path, pos, at - 1)
            n = n + 1
            parts[n] = char(value)
            pos = at + 3
        end
        n = n + 1
        parts[n] = sub(path, pos)
        decoded = concat(parts)
    end
    if find(decoded, "/.", 1, true) then
        local probe = decoded .. "/"
        if find(probe, "/./", 1, true) or find(probe, "/../", 1, true) then
            return nil
        end
    end
    return decoded
end

local PARAMS = { token = "start", session = "session", CAT = "cat" }
local FOLDED = { token = true, session = true, cat = true }

local function looks_like_token_param(name)
    local decoded = name:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end)
    return FOLDED[lower(decoded)] ~= nil or find(decoded, "%", 1, true) ~= nil
end

-- Split a raw target (paths.split_target): token, raw path, kind ("start", "session", "cat"),
-- the query without the token and whether the token came in it; or nil and a reason.
local function split_target(target)
    if find(target, "#", 1, true) then
        return nil, "bad_path"
    end
    local path, query = target, ""
    local q = find(target, "?", 1, true)
    if q then
        path, query = sub(target, 1, q - 1), sub(target, q + 1)
    end
    local token, kind = nil, "start"
    if byte(path, 1) == 47 and byte(path, 3) == 47 then
        local mark = byte(path, 2)
        if mark == 116 or mark == 115 then -- "t" or "s"
            kind = mark == 115 and "session" or "start"
            local slash = find(path, "/", 4, true)
            if slash == nil then
                return nil, "bad_path"
            end
            token = sub(path, 4, slash - 1)
            path = sub(path, slash)
        end
    end
    if query == "" then
        return token, path, kind, "", false
    end
    local in_path = token ~= nil
    local kept, nkept = {}, 0
    local pos = 1
    local qlen = #query
    while pos <= qlen + 1 do
        local amp = find(query, "&", pos, true) or (qlen + 1)
        local param = sub(query, pos, amp - 1)
        local eq = find(param, "=", 1, true)
        local name = eq and sub(param, 1, eq - 1) or param
        local which = PARAMS[name]
        if which then
            if token ~= nil then
                return nil, "malformed"
            end
            kind = which
            token = sub(param, #name + 2)
            if token == "" then
                return nil, "malformed"
            end
        elseif FOLDED[lower(name)]
                or (find(name, "%", 1, true) and looks_like_token_param(name)) then
            return nil, "malformed"
        else
            nkept = nkept + 1
            kept[nkept] = param
        end
        pos = amp + 1
    end
    return token, path, kind, concat(kept, "&"), token ~= nil and not in_path
end

-- --- the token (token.py) --------------------------------------------------------------------

-- Big-endian integers at 0-based offset ``i`` of a byte buffer.
local function u16(p, i)
    return p[i] * 256 + p[i + 1]
end

local function u32(p, i)
    return ((p[i] * 256 + p[i + 1]) * 256 + p[i + 2]) * 256 + p[i + 3]
end

-- The offset past the length-prefixed field at ``pos`` and its length, read in place (no
-- string), or nil when it runs past ``blen`` (or ``pos`` is nil: an earlier field did).
local function u8_skip(p, pos, blen)
    if pos == nil or pos >= blen then
        return nil
    end
    local flen = p[pos]
    if pos + 1 + flen > blen then
        return nil
    end
    return pos + 1 + flen, flen
end

-- The length-prefixed string at ``pos`` and the offset past it, or nil as u8_skip.
local function u8_string(p, pos, blen)
    local past, flen = u8_skip(p, pos, blen)
    if past == nil then
        return nil
    end
    return ffi.string(p + past - flen, flen), past
end

-- Every one of ``n`` bytes at 0-based offset ``at`` of a byte buffer printable ASCII
-- (0x20-0x7e), read in place.
local function printable_at(p, at, n)
    for i = at, at + n - 1 do
        local b = p[i]
        if b < 32 or b > 126 then
            return false
        end
    end
    return true
end

-- The offsets and lengths of the last opened token's id fields in token_buf (open_token).
local field_at = { 0, 0, 0, 0, 0, 0, 0, 0 }

-- Address bytes of a client address text (addresses.packed_ip), or nil.
local function packed_ip(text)
    if text == nil then
        return nil
    end
    if ffi.C.inet_pton(AF_INET, text, addr_buf) == 1 then
        return ffi.string(addr_buf, 4)
    end
    if ffi.C.inet_pton(AF_INET6, text, addr_buf) == 1 then
        local packed = ffi.string(addr_buf, 16)
        if sub(packed, 1, 12) == "\0\0\0\0\0\0\0\0\0\0\255\255" then
            return sub(packed, 13)
        end
        return packed
    end
    return nil
end

-- A client network field (token.decode_network): true when well formed.
local function network_ok(raw)
    local n = #raw
    if n ~= 5 and n ~= 17 then
        return false
    end
    local prefix = byte(raw, 1)
    local bits = 8 * (n - 1)
    if prefix > bits then
        return false
    end
    for i = 0, n - 2 do
        local b = byte(raw, 2 + i)
        local first = 8 * i -- bit index of this byte's top bit
        if first >= prefix then
            if b ~= 0 then
                return false
            end
        elseif first + 8 > prefix then
            local keep = prefix - first
            if b % (2 ^ (8 - keep)) ~= 0 then
                return false
            end
        end
    end
    if bits == 128 and prefix >= 96 and sub(raw, 2, 13) == "\0\0\0\0\0\0\0\0\0\0\255\255" then
        return false
    end
    return true
end

-- packed_ip's answer for nginx's $binary_remote_addr of an IP connection (4 or 16 bytes): the
-- same bytes without parsing text (an IPv4-mapped IPv6 address read as IPv4). Not for a UNIX
-- socket's (the peer's path as text: access reads $remote_addr there).
local MAPPED_V4 = "\0\0\0\0\0\0\0\0\0\0\255\255"
local function packed_binary(bin)
    local n = bin and #bin
    if n == 4 then
        return bin
    end
    if n == 16 then
        return sub(bin, 1, 12) == MAPPED_V4 and sub(bin, 13) or bin
    end
    return nil
end

_M.packed_binary = packed_binary -- for the tests: it must agree with packed_ip

local function in_network(client, raw)
    local n = #raw - 1
    if client == nil or #client ~= n then
        return false
    end
    local prefix = byte(raw, 1)
    for i = 0, n - 1 do
        local first = 8 * i
        if first >= prefix then
            return true
        end
        local a, b = byte(client, 1 + i), byte(raw, 2 + i)
        if first + 8 <= prefix then
            if a ~= b then
                return false
            end
        else
            local drop = 2 ^ (8 - (prefix - first))
            if math.floor(a / drop) ~= math.floor(b / drop) then
                return false
            end
        end
    end
    return true
end

-- --- the memo of authentic tokens -----------------------------------------------------------
-- A viewer's player sends the same token with every segment. Its MAC (three SHA-256 blocks, a
-- quarter of the verifier's work) is computed and its fields parsed once per worker: the
-- decoded bytes of a token whose MAC matched, and the claims parsed from them, are kept in a
-- set of two slots picked by its last MAC bytes, and a token equal to them in every byte (and
-- in kind: start and session tokens have different keys) is authentic, with those claims,
-- without computing or parsing again. Only authentication is remembered: expiry, scope and
-- network are checked on every request, revocation whenever one was stored since the token's
-- last lookups (its slot's ``clean``, decide). The key ring is fixed for a worker's life (a reload
-- starts new workers), so a remembered MAC never outlives its key.
-- The slots are C memory (calloc: pages are taken when first written), outside the Lua heap:
-- a Lua table of 100,000 tokens made every request pay for its collection and string
-- interning (docs/performance.md). Two-way: a token is forgotten when two others land on its
-- set after it was last used (the set's ``recent`` way stays), so ``memo_slots`` (a power of
-- two, per worker; 0 turns the memo off) should be about twice the live viewers a worker
-- serves (a viewer comes back after the others had their turn: one way kept 2 in 3 of
-- 100,000 viewers in 262,144 slots, two ways keep 4 in 5). An attacker gains nothing from the
-- set choice: only a token whose MAC was verified is stored, the MAC is compared in constant
-- time, and a token equal to a stored one is that token.
local MEMO_BYTES = 188
local memo, memo_mask = nil, 0
local memo_hits = 0 -- tokens this worker authenticated from the memo (read by the tests)
-- The slot of the token open_token opened last (nil: none), for its revocation check.
local opened_slot = nil
-- A slot's ``clean`` before its token is first checked: never a count (see usable_policy).
local NOT_CHECKED = 0xFFFFFFFF

local function memo_open(slots)
    memo, memo_mask = nil, 0
    if slots and slots >= 2 then
        local raw = C.calloc(slots, ffi.sizeof("playgate_memo_slot"))
        if raw == nil then -- every token is MAC-checked, as without the memo
            ngx.log(ngx.WARN, "playgate native: no memory for the memo of ", slots,
                " tokens; every request computes its MAC")
            return
        end
        memo, memo_mask = ffi.cast("playgate_memo_slot *", raw), slots / 2 - 1
    end
end

-- The first of the two slots where the token of ``len`` bytes in ``p`` is remembered: by its
-- MAC's last three bytes (any token's, chosen by whoever sent it).
local function memo_set(p, len)
    return memo + 2 * band((p[len - 3] * 256 + p[len - 2]) * 256 + p[len - 1], memo_mask)
end

-- Whether ``slot`` remembers these bytes, of this kind (``sflag``: 1 session, 0 start). The MAC
-- in constant time: the time says only whether all 32 bytes were equal. Only a sender who
-- already holds the remembered token's MAC (its secret part) gets to the body, compared as
-- plain bytes (its fields are no secret: a quarter of the constant-time comparison's cost).
local function holds(slot, p, len, blen, sflag)
    return slot.len == len and slot.session == sflag
        and crypto.CRYPTO_memcmp(slot.bytes + blen, p + blen, MAC_BYTES) == 0
        and C.memcmp(slot.bytes, p, blen) == 0
end

function _M.memo_hits()
    return memo_hits
end

-- The claims of an authentic token, or nil and a reason (token.open_token). The token is
-- decoded into token_buf and read there: only the fields the checks need become strings.
local lean = {}

local function open_token(token, session, full)
    opened_slot = nil
    if #token > MAX_TOKEN_CHARS then
        return nil, "malformed"
    end
    local len = b64url_into(token, token_buf)
    if len == nil or len < 2 + MAC_BYTES then
        return nil, "malformed"
    end
    local p = token_buf
    local version = p[0]
    if version ~= 1 and version ~= 2 then
        return nil, "malformed"
    end
    local blen = len - MAC_BYTES
    local kid_len = p[1]
    local pos = 2 + kid_len -- 0-based offsets from here
    if pos > blen then
        return nil, "malformed"
    end
    for i = 2, pos - 1 do
        if p[i] > 127 then
            return nil, "malformed"
        end
    end
    -- ``set``: where this token is or will be remembered (nil: no memo, or too long for it).
    local set, slot = nil, nil
    if memo ~= nil and len <= MEMO_BYTES then
        set = memo_set(p, len)
        local sflag = session and 1 or 0
        local way = holds(set, p, len, blen, sflag) and 0
            or holds(set + 1, p, len, blen, sflag) and 1 or nil
        if way ~= nil then
            slot = set + way
            set.recent = way
            memo_hits = memo_hits + 1
            opened_slot = slot
            if not full then
                -- These very bytes were authenticated and parsed before: their claims are
                -- the slot's (the key ring is the worker's for life, so the key is known).
                local at, sa = field_at, slot.at
                at[1], at[2], at[3], at[4] = sa[0], sa[1], sa[2], sa[3]
                at[5], at[6], at[7], at[8] = sa[4], sa[5], sa[6], sa[7]
                local c = lean
                c.key_id, c.scope, c.session_id, c.user_id = nil, nil, nil, nil
                c.expires_at, c.not_before = slot.expires_at, slot.not_before
                c.token_id = ffi.string(p + sa[0], sa[1])
                c.network = slot.net_len > 0 and ffi.string(p + slot.net_at, slot.net_len) or nil
                c.max_uses, c.max_streams = slot.max_uses, slot.max_streams
                c.session_seconds = slot.session_seconds
                return c
            end
        end -- else not remembered: MAC-checked below, remembered once parsed
    end
    local key_id = ffi.string(p + 2, kid_len)
    local key = keys[key_id]
    if key == nil then
        return nil, "unknown_key"
    end
    if slot == nil then
        mac_into(session and key.session or key.start, key.outer, p, blen)
        if crypto.CRYPTO_memcmp(mac_out, p + blen, MAC_BYTES) ~= 0 then
            return nil, "bad_signature"
        end
    end
    -- Only authenticated bytes are parsed past this point; a field running past the body
    -- is malformed (so no read or string goes beyond it).
    if pos + 18 > blen then
        return nil, "malformed"
    end
    local expires_at = u32(p, pos) * 4294967296 + u32(p, pos + 4)
    local not_before = u32(p, pos + 8) * 4294967296 + u32(p, pos + 12)
    local scope_len = u16(p, pos + 16)
    pos = pos + 18
    if pos + scope_len > blen or scope_len == 0 then
        return nil, "malformed"
    end
    if p[pos] ~= 47 or p[pos + scope_len - 1] ~= 47 then
        return nil, "malformed"
    end
    local scope_at = pos
    pos = pos + scope_len
    -- The session id and user id stay in token_buf (strings only for ``full`` claims, or when
    -- a revocation lookup finds a key: with_ids).
    local token_id, network, sid_len, uid_len
    local tid_at, sid_at, uid_at = pos + 1, nil, nil
    token_id, pos = u8_string(p, pos, blen)
    sid_at = pos and pos + 1
    pos, sid_len = u8_skip(p, pos, blen)
    local net_at = pos and pos + 1
    network, pos = u8_string(p, pos, blen)
    uid_at = pos and pos + 1
    pos, uid_len = u8_skip(p, pos, blen)
    if pos == nil then -- a field ran past the body (u8_string, u8_skip then carry nil on)
        return nil, "malformed"
    end
    local tid_len = #token_id
    if pos + 6 > blen then
        return nil, "malformed"
    end
    local max_uses = u32(p, pos)
    local max_streams = u16(p, pos + 4)
    pos = pos + 6
    local session_seconds = 0
    if version == 2 then
        if pos + 4 > blen then
            return nil, "malformed"
        end
        session_seconds = u32(p, pos)
        pos = pos + 4
        if session_seconds == 0 then
            return nil, "malformed"
        end
    end
    if pos ~= blen or token_id == "" then
        return nil, "malformed"
    end
    -- Every byte of the scope, token id, session id and user id printable, read in place
    -- (no concatenation: a new string per request).
    if not printable_at(p, scope_at, scope_len) or not printable_at(p, tid_at, tid_len)
            or not printable_at(p, sid_at, sid_len) or not printable_at(p, uid_at, uid_len) then
        return nil, "malformed"
    end
    if network ~= "" and not network_ok(network) then
        return nil, "malformed"
    end
    -- Where the token id, session id and user id are in token_buf (0-based offset, length):
    -- the revocation check reads them there (revoked_fast) until the next token is opened.
    local at = field_at
    at[1], at[2], at[3], at[4], at[5], at[6] = tid_at, tid_len, sid_at, sid_len, uid_at, uid_len
    at[7], at[8] = scope_at, scope_len
    if set ~= nil and slot == nil then
        -- Authentic and well formed: remembered with its claims, in its set's way not used
        -- last (whatever token was there is forgotten). Offsets fit a byte: len <= 188.
        local way = 1 - set.recent
        set.recent = way
        slot = set + way
        slot.len, slot.session = len, session and 1 or 0
        ffi.copy(slot.bytes, p, len)
        local sa = slot.at
        sa[0], sa[1], sa[2], sa[3] = tid_at, tid_len, sid_at, sid_len
        sa[4], sa[5], sa[6], sa[7] = uid_at, uid_len, scope_at, scope_len
        slot.net_at, slot.net_len = net_at, #network
        slot.expires_at, slot.not_before = expires_at, not_before
        slot.max_uses, slot.max_streams = max_uses, max_streams
        slot.session_seconds = session_seconds
        slot.clean = NOT_CHECKED
        opened_slot = slot
    end
    if full then
        return {
            key_id = key_id,
            expires_at = expires_at,
            not_before = not_before,
            scope = ffi.string(p + scope_at, scope_len),
            token_id = token_id,
            session_id = sid_len > 0 and ffi.string(p + sid_at, sid_len) or nil,
            network = network ~= "" and network or nil,
            user_id = uid_len > 0 and ffi.string(p + uid_at, uid_len) or nil,
            max_uses = max_uses,
            max_streams = max_streams,
            session_seconds = session_seconds,
        }
    end
    -- One table for every request's claims (a new one per request was garbage): valid until
    -- the next open_token; the scope, session and user ids are filled in by with_ids when
    -- needed (the scope check reads the scope in token_buf).
    local c = lean
    c.key_id, c.expires_at, c.not_before, c.scope = key_id, expires_at, not_before, nil
    c.token_id, c.session_id, c.user_id = token_id, nil, nil
    c.network = network ~= "" and network or nil
    c.max_uses, c.max_streams, c.session_seconds = max_uses, max_streams, session_seconds
    return c
end

-- --- revocations (state/revocations.py), from the shared dict --------------------------------

local function video_id(scope)
    if sub(scope, 1, 8) == "/videos/" then
        local rest = sub(scope, 9, -2)
        if rest ~= "" and not find(rest, "/", 1, true) then
            return rest
        end
    end
    return nil
end

local function revoked(dict, claims)
    if dict:get("t:" .. claims.token_id) then
        return true
    end
    if claims.session_id and dict:get("s:" .. claims.session_id) then
        return true
    end
    local nb = claims.not_before
    if claims.user_id then
        local at = dict:get("u:" .. claims.user_id)
        if at and nb <= at then
            return true
        end
    end
    local video = video_id(claims.scope)
    if video then
        local at = dict:get("v:" .. video)
        if at and nb <= at then
            return true
        end
    end
    return false
end

-- Whether any revocation key of this token is in the dict, looked up with its key built in a
-- buffer from the bytes in token_buf (no key strings: "t:" .. token_id and the rest were four
-- new strings per request): through the same FFI call as dict:get (lua-resty-core's shdict).
-- When none is there (the common case) the token is not revoked; when one is, or the lookup
-- fails, revoked() decides as before, so the answer is revoked()'s on every input.
local shdict_ffi = pcall(function()
    return C.ngx_http_lua_ffi_shdict_get, C.ngx_http_lua_ffi_shdict_udata_to_zone
end)
local key_buf = ffi.new("unsigned char[?]", MAX_TOKEN_CHARS + 2)
local sd_type = ffi.new("int[1]")
local sd_str_buf = ffi.new("unsigned char *[1]")
local sd_str = ffi.new("unsigned char[64]")
local sd_len = ffi.new("size_t[1]")
local sd_num = ffi.new("double[1]")
local sd_flags = ffi.new("int[1]")
local sd_stale = ffi.new("int[1]")
local sd_err = ffi.new("char *[1]")
local zone_dict, zone = nil, nil
local VIDEOS = "/videos/"

-- true when the key ``kind`` ":" and ``len`` bytes at ``at`` of token_buf is in the dict, or
-- the lookup failed (then revoked() looks again and reports it).
local function present(kind, at, len)
    key_buf[0], key_buf[1] = kind, 58 -- ":"
    ffi.copy(key_buf + 2, token_buf + at, len)
    sd_str_buf[0], sd_len[0], sd_err[0] = sd_str, 64, nil
    local rc = C.ngx_http_lua_ffi_shdict_get(zone, key_buf, len + 2, sd_type, sd_str_buf,
        sd_len, sd_num, sd_flags, 0, sd_stale, sd_err)
    if rc ~= 0 then
        return true
    end
    if sd_str_buf[0] ~= sd_str then -- a string value longer than sd_str: malloc'ed for us
        C.free(sd_str_buf[0])
    end
    return sd_type[0] ~= 0 -- 0: LUA_TNIL, not there
end

-- The claims of the token open_token read last, with its scope, session and user ids as
-- strings (as full claims have them).
local function with_ids(claims)
    local at = field_at
    if claims.scope == nil then
        claims.scope = ffi.string(token_buf + at[7], at[8])
    end
    if claims.session_id == nil and at[4] > 0 then
        claims.session_id = ffi.string(token_buf + at[3], at[4])
    end
    if claims.user_id == nil and at[6] > 0 then
        claims.user_id = ffi.string(token_buf + at[5], at[6])
    end
    return claims
end

local function revoked_fast(dict, claims)
    if not shdict_ffi then
        return revoked(dict, with_ids(claims))
    end
    if dict ~= zone_dict then
        zone = C.ngx_http_lua_ffi_shdict_udata_to_zone(dict[1])
        if zone == nil then
            return revoked(dict, with_ids(claims))
        end
        zone_dict = dict
    end
    local at = field_at
    if present(116, at[1], at[2]) -- "t"
            or (at[4] > 0 and present(115, at[3], at[4])) -- "s"
            or (at[6] > 0 and present(117, at[5], at[6])) then -- "u"
        return revoked(dict, with_ids(claims))
    end
    -- video_id(scope): "/videos/<id>/", the id not empty and without "/"
    local scope_at, scope_len = at[7], at[8]
    if scope_len > 9 and C.memcmp(token_buf + scope_at, VIDEOS, 8) == 0 then
        local first, last = scope_at + 8, scope_at + scope_len - 2
        for i = first, last do
            if token_buf[i] == 47 then
                return false
            end
        end
        if present(118, first, last - first + 1) then -- "v"
            return revoked(dict, with_ids(claims))
        end
    end
    return false
end

-- --- the decision ----------------------------------------------------------------------------

-- Whether a path ends in ".m3u8" or ".mpd" in any case: what the session opening asks of the
-- decoded path, and the template's $pg_is_manifest of an allowed raw path (the map's caseless
-- regex; normalize_path admitted no newline for its "$"). Read byte by byte (lower() would
-- make a new string): bor(b, 32) folds only letters here, M/m, U/u, P/p, D/d are the only
-- bytes giving m, u, p, d. The raw path's flag is set only while the rendered suffixes
-- (protocol.MANIFEST_SUFFIXES, given to init) are these two: other suffixes leave it to the map.
local function is_manifest(path)
    local n = #path
    if n >= 5 and byte(path, n - 4) == 46 and bor(byte(path, n - 3), 32) == 109
            and byte(path, n - 2) == 51 and bor(byte(path, n - 1), 32) == 117
            and byte(path, n) == 56 then -- ".m3u8"
        return true
    end
    return n >= 4 and byte(path, n - 3) == 46 and bor(byte(path, n - 2), 32) == 109
        and bor(byte(path, n - 1), 32) == 112 and bor(byte(path, n), 32) == 100 -- ".mpd"
end

-- The decision for one request: "allow", token id, raw path (the target's path without the
-- token and the query) | "deny", reason, token id | "defer", why.
-- ``policy``: {leeway=, max_ttl=, max_session=}; ``dict``: the revocations. ``open``: the
-- caller can answer a redirect, so a start token that opens a playback session is decided
-- here too: "open", token id, claims, raw path, query without the token, token in query.
-- The viewer's address: ``client_packed`` (packed_binary of $binary_remote_addr), else
-- ``client_text`` parsed.
function _M.decide(target, client_text, now, policy, dict, open, client_packed)
    local token, path, kind, query, in_query = split_target(target)
    if kind == nil then -- split_target refused it: path is the reason
        return "deny", path
    end
    if kind == "cat" then
        return "defer", "cat"
    end
    local decoded = normalize_path(path)
    if decoded == nil then
        return "deny", "bad_path"
    end
    if token == nil or token == "" then
        return "deny", "missing"
    end
    local session = kind == "session"
    -- With CTA-5007 accepted, a start token that does not begin as every PlayGate token does
    -- ("A": version byte 1 or 2) is a CAT to the validator (cat/verify.py looks_like_cat).
    if policy.cat and not session and byte(token, 1) ~= 65 then
        return "defer", "cat"
    end
    -- Every request opens its token (nginx's base64 decoder, fields read in place); its MAC
    -- (OpenSSL's SHA-256 on precomputed HMAC states) only when the memo of authentic tokens
    -- (memo_open, in C memory) does not hold its bytes.
    local claims, reason = open_token(token, session, open)
    if claims == nil then
        return "deny", reason
    end
    local tid = claims.token_id
    local leeway = policy.leeway
    if now > claims.expires_at + leeway then
        return "deny", "expired", tid
    end
    if now + leeway < claims.not_before then
        return "deny", "not_yet_valid", tid
    end
    local longest = session and policy.max_session or policy.max_ttl
    if claims.expires_at - claims.not_before > longest then
        return "deny", "lifetime_exceeded", tid
    end
    -- sub(decoded, 1, #scope) ~= scope, compared in place in token_buf (no new string)
    local scope_len = field_at[8]
    if #decoded < scope_len or C.memcmp(decoded, token_buf + field_at[7], scope_len) ~= 0 then
        return "deny", "out_of_scope", tid
    end
    if claims.network
            and not in_network(client_packed or packed_ip(client_text), claims.network) then
        return "deny", "ip_mismatch", tid
    end
    -- Past the pure check: what needs the validator (sessions it opens where the caller
    -- cannot redirect, counted tokens: a stream limit counts the session a redirect opens).
    local opening = not session and claims.session_seconds > 0 and is_manifest(decoded)
    if opening and not open then
        return "defer", "session_open"
    end
    if claims.max_uses > 0 or claims.max_streams > 0 then
        return "defer", "limits"
    end
    if dict then
        -- A remembered token found in no revocation when the feed had stored ``revisions``
        -- of them, and none stored since, is in none now (a revocation is only ever added;
        -- one expiring revokes nothing new): its lookups are skipped.
        local slot, revisions = opened_slot, policy.revisions
        if slot == nil or revisions == nil or slot.clean ~= revisions then
            if revoked_fast(dict, claims) then
                return "deny", "revoked", tid
            end
            if slot ~= nil and revisions ~= nil then
                slot.clean = revisions
            end
        end
    end
    if opening then
        return "open", tid, claims, path, query, in_query
    end
    return "allow", tid, path
end

-- --- playback sessions (sessions.py): what a start token opens -------------------------------

local IPV4_SESSION_PREFIX, IPV6_SESSION_PREFIX = 24, 64

local function be(value, bytes)
    local out = {}
    for i = bytes, 1, -1 do
        out[i] = char(value % 256)
        value = math.floor(value / 256)
    end
    return concat(out)
end

local function u8_field(s)
    return char(#s) .. s
end

-- The viewer's /24 or /64 as a token's network field (sessions.viewer_network), or nil.
local function viewer_network(client_text)
    local packed = packed_ip(client_text)
    if packed == nil then
        return nil
    end
    if #packed == 4 then
        return char(IPV4_SESSION_PREFIX) .. sub(packed, 1, 3) .. "\0"
    end
    return char(IPV6_SESSION_PREFIX) .. sub(packed, 1, 8) .. ("\0"):rep(8)
end

-- secrets.token_urlsafe(12): 12 bytes from OpenSSL's CSPRNG, base64url; nil if it fails.
local function new_session_id()
    if crypto.RAND_bytes(rand_buf, 12) ~= 1 then
        return nil
    end
    return encode_base64url(ffi.string(rand_buf, 12))
end

-- The session token a start token opens at ``now`` (sessions.session_claims, seal_session), or
-- nil when Python must decide (an unknown viewer address to narrow to, no random bytes).
local function session_token(claims, client_text, now, policy)
    local network = claims.network
    if network == nil and policy.narrow then
        network = viewer_network(client_text)
        if network == nil then
            return nil
        end
    end
    local key = keys[claims.key_id]
    local sid = claims.session_id or new_session_id()
    if key == nil or sid == nil then
        return nil
    end
    local nb = claims.not_before
    local expires_at = math.min(math.floor(now) + claims.session_seconds, nb + policy.max_session)
    local scope = claims.scope
    local body = concat({
        "\1", -- version 1: a session token carries no session allowance
        u8_field(claims.key_id),
        be(expires_at, 8), be(nb, 8), be(#scope, 2), scope,
        u8_field(claims.token_id),
        u8_field(sid),
        u8_field(network or ""),
        u8_field(claims.user_id or ""),
        be(0, 4), -- max uses: a use limit counts starts
        be(claims.max_streams, 2),
    })
    mac_into(key.session, key.outer, body, #body)
    return encode_base64url(body .. ffi.string(mac_out, MAC_BYTES))
end

-- sessions.session_location: the same path and query, carrying the session token.
local function session_location(path, query, in_query, token)
    if in_query then
        return path .. "?" .. (query ~= "" and (query .. "&") or "") .. "session=" .. token
    end
    return "/s/" .. token .. path .. (query ~= "" and ("?" .. query) or "")
end

-- --- the feed: revocations and policy from the Python validator ------------------------------

local POLL = 0.2
local FRESH = 0.75
-- The feed's state (poll times, trust, policy) in a dict of its own: writing it can never push
-- a revocation out of the revocation dict.
local meta
local feed_epoch, feed_cursor = "-", 0
local feed_ok = true

local function feed_auth()
    local ids = {}
    for kid in pairs(keys) do
        ids[#ids + 1] = kid
    end
    table.sort(ids)
    local kid = ids[1]
    local ts = tostring(math.floor(ngx.now()))
    return kid .. "." .. ts .. "." .. to_hex(hmac(keys[kid].key, FEED_CONTEXT .. "auth:" .. ts))
end

-- A revocation this edge could miss: it decides nothing natively any more (a reload, with a
-- larger dict if that was why, starts over).
local function give_up(why)
    meta:set("overflow", generation)
    ngx.log(ngx.ERR, "playgate native: ", why, "; every request goes to the validator")
end

-- Store one "r <kind> <value> <revoked at> <expires at>" line; false when it is not one.
local function store_revocation(dict, line, now)
    local k, v, at, exp = line:match("^r ([tsuv]) (%S+) (%S+) (%S+)$")
    at, exp = tonumber(at), tonumber(exp)
    if not (k and at and exp) then
        return false
    end
    if exp <= now then
        return true -- expired already: nothing left to deny
    end
    local key = k .. ":" .. v
    local known = dict:get(key)
    -- The same time again is news only when it lives longer: stored anew, so it outlives the
    -- old entry's expiry as it does in the validator's view (which keeps the last of equals).
    if known ~= nil and known > at then
        return true -- a later revocation of the same target covers more: keep it
    end
    local stored = dict:safe_set(key, at, exp - now)
    if not stored then
        -- A full dict would forget revocations: stop deciding natively.
        give_up("revocation dict is full (raise native_dict_size)")
    elseif not meta:incr("revisions", 1, 0) then
        -- Counted once stored, before this worker yields: a worker that reads the new count
        -- looks this revocation up again for every remembered token (usable_policy, decide).
        -- Uncounted, it could be skipped: then nothing is decided natively either.
        give_up("cannot count a revocation")
    end
    return true
end

-- One poll of one validator; true when the feed was applied.
local function poll_one(addr, dict)
    local host, port = addr:match("^%[?([^%]]+)%]?:(%d+)$")
    local sock = ngx.socket.tcp()
    sock:settimeouts(250, 2000, 5000)
    local ok, err = sock:connect(host, tonumber(port))
    if not ok then
        return false, err
    end
    local req = "GET /_playgate/native-feed?epoch=" .. feed_epoch .. "&cursor=" .. feed_cursor
        .. " HTTP/1.0\r\nHost: playgate-native\r\nX-PlayGate-Feed-Auth: " .. feed_auth()
        .. "\r\n\r\n"
    ok, err = sock:send(req)
    if not ok then
        sock:close()
        return false, err
    end
    local status = sock:receive("*l")
    if status == nil then
        sock:close()
        return false, err
    end
    if not find(status, "^HTTP/1%.[01] 200") then
        -- The validator answers but refuses (a key ring changed on one side): it is reachable,
        -- so its failure policy does not apply here; it decides every request itself.
        -- Its ring may no longer be nginx's (a 401): the policy known from when they agreed
        -- must not outlive it if the validator goes away next.
        sock:close()
        meta:set("policy", generation .. " 0")
        meta:set("poll_at", ngx.now())
        meta:set("trusted", false)
        return true
    end
    repeat
        local line = sock:receive("*l")
        if line == nil or find(lower(line), "^transfer%-encoding:") then
            -- Only a plain body is read line by line: chunk marks would split lines.
            sock:close()
            return false, "feed cut short or chunked"
        end
    until line == ""
    local head = {}
    local first = sock:receive("*l")
    if first ~= FEED_VERSION then
        sock:close()
        return false, "not a feed"
    end
    -- Revocations are stored as they arrive (adding one is always safe, even from an answer
    -- cut short); the cursor and the policy only once the answer is complete.
    local complete, nrev = false, 0
    local now = ngx.now()
    while true do
        local line = sock:receive("*l")
        if line == nil then
            break
        end
        if line == "end" then
            complete = true
            break
        end
        if byte(line, 1) == 114 then -- "r kind value revoked_at expires_at"
            nrev = nrev + 1
            if nrev % 2000 == 0 then
                ngx.sleep(0) -- a full answer can be long: let this worker serve requests
                now = ngx.now()
            end
            if not store_revocation(dict, line, now) then
                sock:close()
                return false, "not a revocation line"
            end
        else
            local name, value = line:match("^(%l+) (.*)$")
            if name == nil then
                sock:close()
                return false, "not a feed line"
            end
            head[name] = value
        end
    end
    sock:close()
    if not complete then
        return false, "feed cut short"
    end
    feed_epoch = head.epoch or "-"
    feed_cursor = tonumber(head.cursor) or 0
    local fresh = ngx.now()
    meta:set("poll_at", fresh)
    meta:set("trusted", head.trusted == "1")
    if head.trusted == "1" then
        meta:set("trusted_at", fresh)
    end
    -- "<native> <leeway> <max_ttl> <max_session> <policy> <max_staleness> <stale_fallback> <cat>
    -- <shield> <narrow sessions>"
    local verify = head.verify or ""
    local native = head.keys == key_probes and key_error == nil
    meta:set("policy", generation .. " " .. ((native and verify) or "0"))
    return true
end

local function poll(premature)
    if premature then
        return
    end
    local dict = ngx.shared[conf.dict]
    local polled, why = false, nil
    for _, addr in ipairs(conf.validators) do
        local ran, ok, err = pcall(poll_one, addr, dict)
        if ran and ok then
            polled = true
            break
        end
        why = ran and err or ok -- the poll's reason, or the error it raised
    end
    -- One line when the feed is lost and one when it is back, not one per poll.
    if polled ~= feed_ok then
        feed_ok = polled
        ngx.log(ngx.ERR, "playgate native: revocation feed ",
            polled and "back" or ("lost (" .. tostring(why) .. ")"))
    end
    local ok, err = ngx.timer.at(POLL, poll)
    if not ok then
        ngx.log(ngx.ERR, "playgate native: cannot schedule the feed poll: ", err)
    end
end


-- The policy of the last feed, parsed once per change.
local policy_text, policy = nil, nil

local function parse_policy(text)
    local gen, native, leeway, max_ttl, max_session, failure, staleness, fallback, cat, shield,
        narrow = text:match("^(%x+) (%d) (%d+) (%d+) (%d+) (%S+) (%S+) (%S+) (%d) (%d) (%d)$")
    if gen ~= generation or native ~= "1" then
        return false
    end
    return {
        leeway = tonumber(leeway),
        max_ttl = tonumber(max_ttl),
        max_session = tonumber(max_session),
        fail_open = failure == "fail_open",
        max_staleness = tonumber(staleness),
        serve_stale = fallback == "serve",
        cat = cat == "1",
        shield = shield == "1",
        narrow = narrow == "1",
    }
end

-- The policy to decide with now, or nil: then the Python validator decides. With it, the time
-- until which this reading stays usable if the feed's state does not change (the C fast path
-- is told no later than that).
local function read_policy(now)
    local text = meta:get("policy")
    if text ~= policy_text then
        policy_text, policy = text, text and parse_policy(text)
    end
    if not policy or meta:get("overflow") == generation then
        return nil
    end
    local poll_at = meta:get("poll_at")
    if poll_at == nil then
        return nil
    end
    if now - poll_at <= FRESH then
        -- The validator answers: its word on whether its view can be trusted stands.
        if meta:get("trusted") then
            return policy, poll_at + FRESH
        end
        return nil
    end
    -- The validator is unreachable: its failure policy, as it would apply it to Redis.
    local trusted_at = meta:get("trusted_at")
    if policy.fail_open and trusted_at
            and (policy.serve_stale or now - trusted_at <= policy.max_staleness) then
        return policy, policy.serve_stale and math.huge or trusted_at + policy.max_staleness
    end
    return nil
end

-- The C fast path's view, renewed by every worker's timer: the policy, good for two turns at
-- most (a worker whose timer stops running has its requests decided here again), and the
-- revocation dict it looks revocation keys up in.
local FAST_PUSH = 0.05

local function push_fast(premature)
    local active, usable_until = nil, nil
    if not premature then
        active, usable_until = read_policy(ngx.now())
    end
    local to_zone = shdict_ffi and C.ngx_http_lua_ffi_shdict_udata_to_zone
    local zone_ptr = active and to_zone and to_zone(ngx.shared[conf.dict][1])
    if not active or zone_ptr == nil then
        fast.playgate_fast_policy(0, 0, 0, 0, 0, 0, 0, nil, nil, "", 0)
        return
    end
    -- With the feed's state (meta), read by C once per tick as usable_policy reads it: the
    -- count of stored revocations (a remembered token's lookups are skipped while it has not
    -- moved) and whether the feed gave up this generation's view (give_up: nothing is
    -- allowed from the next tick, without waiting for this timer).
    fast.playgate_fast_policy(1, math.min(ngx.now() + 2 * FAST_PUSH, usable_until),
        active.leeway, active.max_ttl, active.max_session, active.cat and 1 or 0,
        conf.manifest_flag and 1 or 0, zone_ptr, to_zone(meta[1]), generation, #generation)
end

function _M.init_worker()
    meta = ngx.shared[conf.meta_dict]
    memo_open(conf.memo_slots) -- per worker, after the fork: no page shared or copied
    metrics.init_worker()
    if fast and key_error == nil then
        -- This worker's own ring (the C module's memory is per process: a reload that failed
        -- after init_by_lua ran in the master could have left another ring there).
        fast.playgate_fast_reset()
        for kid, key in pairs(keys) do
            if fast.playgate_fast_add_key(kid, #kid, key.start, key.session, key.outer,
                    SHA256_CTX_BYTES) ~= 0 then
                ngx.log(ngx.WARN, "playgate native: key ", kid, " not given to the fast path; ",
                    "its tokens are decided in Lua")
            end
        end
        -- Its own memo, as large as this file's (memo_open): tokens it allows never reach it.
        if fast.playgate_fast_memo(conf.memo_slots or 0) ~= 0 then
            ngx.log(ngx.WARN, "playgate native: no memory for the fast path's memo of ",
                conf.memo_slots, " tokens; it computes every MAC")
        end
        metrics.count_fast(function() return tonumber(fast.playgate_fast_take_allowed()) end)
        local ok, err = ngx.timer.every(FAST_PUSH, push_fast)
        if not ok then
            ngx.log(ngx.WARN, "playgate native: fast path off in this worker (no timer: ", err,
                ")")
        end
    end
    if ngx.worker.id() == 0 and key_error == nil then
        meta:add("revisions", 0) -- kept over a reload: a count never goes back
        ngx.timer.at(0, poll)
    end
    if key_error ~= nil then
        ngx.log(ngx.ERR, "playgate native: off (", key_error, "); every request goes to the ",
            "validator")
    end
end

-- The feed's state changes a few times a second (POLL): the requests of one event-loop tick
-- (one value of ngx.now(), a millisecond at most) share one reading of it rather than read
-- the dict four times each.
local policy_read_at, policy_read = nil, nil

local function usable_policy(now)
    if now ~= policy_read_at then
        policy_read_at, policy_read = now, read_policy(now)
        if policy_read then
            -- Read before this tick's revocation lookups, so a token found clean is marked
            -- with a count no larger than the revocations it was looked up in. Past the
            -- slots' 32 bits no mark is trusted (a wrapped count could meet an old one).
            -- No count yet (worker 0 makes it): nothing is skipped.
            local revisions = meta:get("revisions")
            policy_read.revisions = revisions and revisions < NOT_CHECKED and revisions or nil
        end
    end
    return policy_read
end

-- auth_request's contract, through a Lua subrequest: 2xx allows, 401/403 deny, else 500.
local function ask_validator()
    local res = ngx.location.capture(conf.auth_location)
    local status = res.status
    local reason, token_id = "", ""
    local renewed, cookie, renewal = "", "", ""
    for name, value in pairs(res.header) do
        local l = lower(name)
        if type(value) == "string" then
            if l == "x-playgate-reason" then
                reason = value
            elseif l == "x-playgate-token-id" then
                token_id = value
            elseif l == "cta-common-access-token" then
                renewed = value
            elseif l == "set-cookie" then
                cookie = value
            elseif l == "x-playgate-renewal" then
                renewal = value
            end
        end
    end
    if status >= 200 and status < 300 then
        ngx.var.pg_token_id = token_id
        -- A CAT renewed by the validator (catr) rides on the allow, as with auth_request.
        ngx.var.pg_cat_renewed = renewed
        ngx.var.pg_cat_cookie = cookie
        ngx.var.pg_renewal = renewal
        return
    end
    if status == 401 or status == 403 then
        ngx.var.pg_reason = reason
        return ngx.exit(status)
    end
    return ngx.exit(500)
end

-- access_by_lua: decide here, or ask the validator.
function _M.access()
    local dict = ngx.shared[conf.dict]
    local now = ngx.now()
    local active = usable_policy(now)
    if active == nil or ngx.var.http_cta_common_access_token ~= nil then
        metrics.deferred(active == nil and "not_fresh" or "cat")
        return ask_validator()
    end
    -- $binary_remote_addr, unless nginx listens on a UNIX socket: there it is the peer's
    -- path as text, which 16 bytes long would read as an IPv6 address.
    local verdict, reason, token_id
    if conf.text_address then
        verdict, reason, token_id = _M.decide(ngx.var.request_uri, ngx.var.remote_addr, now,
            active, dict)
    else
        verdict, reason, token_id = _M.decide(ngx.var.request_uri, nil, now, active, dict, nil,
            packed_binary(ngx.var.binary_remote_addr))
    end
    if verdict == "allow" then
        metrics.allowed()
        -- On an allow the template's maps of these values are not run: their results are set
        -- here (docs/performance.md, branch native-3); every other outcome leaves them to the
        -- maps. The logged token id: the map of $pg_token_id gives it as is (never empty here).
        ngx.var.pg_log_token_id = reason
        -- The path the origin and the cache see, as the $pg_origin_path map cuts it from the
        -- raw URI (after the token, before the query, as split_target did: decide's third
        -- value), and whether it is a manifest ($pg_is_manifest).
        ngx.var.pg_origin_path = token_id
        if conf.manifest_flag then
            ngx.var.pg_is_manifest = is_manifest(token_id) and "1" or "0"
        end
        return
    end
    if verdict == "deny" then
        metrics.denied(reason)
        ngx.var.pg_reason = reason
        ngx.var.pg_token_id = token_id or ""
        return ngx.exit(reason == "missing" and 401 or 403)
    end
    metrics.deferred(reason)
    return ask_validator()
end

-- For the tests: the C fast path's judgement of ``target`` at ``now`` under ``policy`` with
-- no revocation dict (as decide without one), the viewer's address as decide takes it:
-- "allow" and the token id, "decline", or nil when nginx did not load the module.
local fast_tid = ffi.new("unsigned char[256]")
local fast_tid_len = ffi.new("size_t[1]")

function _M.fast_verdict(target, client_text, now, policy, client_packed)
    if not fast then
        return nil
    end
    local client = client_packed or packed_ip(client_text)
    if fast.playgate_fast_judge(target, #target, client, client and #client or 0, now,
            policy.leeway, policy.max_ttl, policy.max_session, policy.cat and 1 or 0, fast_tid,
            fast_tid_len) == 1 then
        return "allow", ffi.string(fast_tid, fast_tid_len[0])
    end
    return "decline"
end

-- For the tests: the C fast path's memo hits and skipped revocation lookups in this worker.
local fast_counts = ffi.new("uint64_t[2]")

function _M.fast_counts()
    if not fast then
        return nil
    end
    fast.playgate_fast_counts(fast_counts, fast_counts + 1)
    return tonumber(fast_counts[0]), tonumber(fast_counts[1])
end

-- The session URL a start token opens for this request and its token id (gate.admit), or nil
-- when it opens none here: the shield decides.
function _M.opened(target, client_text, now, policy, dict)
    local verdict, tid, claims, path, query, in_query = _M.decide(target, client_text, now,
        policy, dict, true)
    if verdict ~= "open" then
        return nil
    end
    local token = session_token(claims, client_text, now, policy)
    if token == nil then
        return nil
    end
    return session_location(path, query, in_query, token), tid
end

-- access_by_lua in the shield location (start-token manifests, query-mode manifests): open
-- the playback session here, answering the 302 the shield would (shield.session_redirect),
-- when the native path is trusted and the token needs no shared state; anything else goes on
-- to the shield, which decides it as before.
function _M.open_session()
    local now = ngx.now()
    local active = usable_policy(now)
    if active == nil or not active.shield or ngx.var.http_cta_common_access_token ~= nil then
        return metrics.deferred("shield")
    end
    local method = ngx.var.request_method -- the shield's methods; it answers the rest 405
    if method ~= "GET" and method ~= "HEAD" then
        return metrics.deferred("shield")
    end
    local location, tid = _M.opened(ngx.var.request_uri, ngx.var.remote_addr, now, active,
        ngx.shared[conf.dict])
    if location == nil then
        return metrics.deferred("shield")
    end
    metrics.opened()
    ngx.var.pg_token_id = tid
    ngx.status = 302
    local header = ngx.header
    header["Location"] = location
    header["X-PlayGate-Token-Id"] = tid
    header["Cache-Control"] = "no-store"
    header["Referrer-Policy"] = "no-referrer"
    header["Content-Length"] = 0
    -- No Content-Type (the shield's redirect has none): setting it marks it as chosen.
    header["Content-Type"] = nil
    ngx.send_headers()
    return ngx.exit(ngx.HTTP_OK)
end

-- content_by_lua of the metrics location: the counts (playgate_metrics.lua) and the feed's age.
function _M.expose_metrics()
    local poll_at = ngx.shared[conf.meta_dict]:get("poll_at")
    metrics.expose(poll_at and ngx.now() - poll_at)
end

return _M
