-- The validators' addresses for the native verifier's feed poller (playgate_native.lua), which
-- connects with ngx.socket.tcp: that needs an IP address, or nginx's `resolver` (a DNS server
-- address in the config, and no /etc/hosts). A production config names validators by host
-- name, so their names are resolved here, in init_by_lua, with the system's getaddrinfo: at
-- the same moment (start, every reload) and the same way (/etc/hosts, then DNS) as nginx
-- resolves the `server` names of the validator upstream. A validator that moves to another
-- address needs a reload, as the upstream does.

local ffi = require("ffi")

local _M = {}

ffi.cdef([[
struct pg_sockaddr { unsigned short family; unsigned char data[26]; };
struct pg_addrinfo {
    int ai_flags; int ai_family; int ai_socktype; int ai_protocol;
    uint32_t ai_addrlen; struct pg_sockaddr *ai_addr; char *ai_canonname;
    struct pg_addrinfo *ai_next;
};
int getaddrinfo(const char *node, const char *service, const struct pg_addrinfo *hints,
                struct pg_addrinfo **res);
void freeaddrinfo(struct pg_addrinfo *res);
const char *gai_strerror(int errcode);
const char *inet_ntop(int af, const void *src, char *dst, uint32_t size);
]])

local AF_INET, AF_INET6, SOCK_STREAM = 2, 10, 1
-- Where the address sits in sockaddr_in (after family and port) and in sockaddr_in6 (after
-- family, port and flow info), counted from the start of data[].
local ADDR_AT = { [AF_INET] = 2, [AF_INET6] = 6 }

-- The addresses of ``host`` as text ("10.0.0.5", "::1"), in getaddrinfo's order; or nil and why.
local function addresses_of(host)
    local hints = ffi.new("struct pg_addrinfo")
    hints.ai_socktype = SOCK_STREAM
    local res = ffi.new("struct pg_addrinfo *[1]")
    local rc = ffi.C.getaddrinfo(host, nil, hints, res)
    if rc ~= 0 then
        return nil, ffi.string(ffi.C.gai_strerror(rc))
    end
    local out, seen = {}, {}
    local text = ffi.new("char[64]")
    local node = res[0]
    while node ~= nil do
        local family = node.ai_addr.family
        local at = ADDR_AT[family]
        if at and ffi.C.inet_ntop(family, node.ai_addr.data + at, text, 64) ~= nil then
            local addr = ffi.string(text)
            if not seen[addr] then
                seen[addr] = true
                out[#out + 1] = family == AF_INET6 and ("[" .. addr .. "]") or addr
            end
        end
        node = node.ai_next
    end
    ffi.C.freeaddrinfo(res[0])
    return out
end

-- {"validator.internal:8081", "10.0.0.6:8081"} -> every address as "ip:port" ("[ip6]:port").
-- A name that does not resolve is kept as it is (nginx refuses to start on such an upstream
-- name anyway; the poller then says "feed lost" with the reason).
function _M.addresses(validators)
    local out = {}
    for _, addr in ipairs(validators) do
        local host, port = addr:match("^([^%[%]:]+):(%d+)$")
        if host == nil or host:match("^[%d.]+$") then
            out[#out + 1] = addr -- an IPv4 or [IPv6] address already
        else
            local found, err = addresses_of(host)
            if found == nil or #found == 0 then
                ngx.log(ngx.ERR, "playgate native: cannot resolve validator ", host, ": ",
                    tostring(err or "no address"))
                out[#out + 1] = addr
            end
            for _, ip in ipairs(found or {}) do
                out[#out + 1] = ip .. ":" .. port
            end
        end
    end
    return out
end

return _M
