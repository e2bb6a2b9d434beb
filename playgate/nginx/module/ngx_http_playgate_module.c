/*
 * PlayGate's fast path: the native verifier's common allow decided in C, without entering Lua.
 *
 * playgate_native.lua decides every request of the native edge; what it costs is mostly Lua's
 * own (entering the handler, nginx variables looked up by name, the token read byte by byte):
 * docs/performance.md, "The fast path in C". This handler runs first in the access phase of a
 * location with `playgate_fast on` and ALLOWS ONLY: a GET or HEAD with a path-mode start or
 * session token (/t/<token>/<path> or /s/<token>/<path>), no query, a plain path, a canonical
 * token whose HMAC verifies with a key of the ring, within its times, scope and network (the
 * viewer's address), with no use or stream limit, no session to open, and no revocation key
 * of its in the dict.
 * Anything else, or any doubt, is DECLINED and the Lua verifier decides it as before: every
 * deny, and every deny's reason, stays Lua's. So the two can disagree only by this code
 * allowing what Lua would not: every batch tests/e2e/test_nginx_native.py judges is judged
 * here too, and each allow compared with Python's verdict.
 *
 * What it knows comes from Lua through the FFI (the functions below marked "Lua"): the key
 * ring's HMAC states from each worker's init_worker_by_lua (the worker's own ring: never one a
 * reload in the master staged and then dropped), and the policy from each worker's timer
 * every few tens of milliseconds, good for a short while only: a worker whose Lua stops
 * telling it declines everything again.
 *
 * Once it allows, the rest of the access phase is skipped (the Lua verifier's handler, and any
 * allow/deny or auth_* rule of the location: the media location has none, and methods other
 * than GET and HEAD, which limit_except refuses, are declined here).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>


#define PG_MAC_BYTES        32
#define PG_MAX_TOKEN_CHARS  2048
#define PG_MAX_KEYS         64
#define PG_MAX_KID          32
#define PG_CTA_HEADER       "cta_common_access_token"


/* lua-nginx-module's shared dict read (what lua-resty-core's dict:get calls). */
int ngx_http_lua_ffi_shdict_get(ngx_shm_zone_t *zone, u_char *key, size_t key_len,
    int *value_type, u_char **str_value_buf, size_t *str_value_len, double *num_value,
    int *user_flags, int get_stale, int *is_stale, char **errmsg);


typedef struct {
    u_char      kid[PG_MAX_KID];
    size_t      kid_len;
    SHA256_CTX  start;      /* inner state with the start token's context absorbed */
    SHA256_CTX  session;    /* ... the session token's */
    SHA256_CTX  outer;
} pg_key_t;


typedef struct {
    ngx_flag_t       usable;
    double           until;   /* ngx.now() past which the policy is not used */
    double           leeway;
    double           max_ttl;
    double           max_session;
    ngx_flag_t       cat;
    ngx_flag_t       manifest_flag;
    ngx_shm_zone_t  *zone;    /* the revocation dict */
    ngx_shm_zone_t  *meta;    /* the feed's state: its count of stored revocations */
} pg_policy_t;


/* A token this worker authenticated and parsed, with its claims (as playgate_native.lua's
 * memo slot): offsets are into ``bytes``, which fit a byte while len <= PG_MEMO_BYTES. */
#define PG_MEMO_BYTES    188
#define PG_NOT_CHECKED   0xffffffff

typedef struct {
    uint16_t  len;              /* 0: empty */
    uint8_t   session;
    uint8_t   recent;           /* in a set's first slot: the way used last */
    uint32_t  clean;            /* the revision count its lookups last found nothing at */
    double    expires_at;
    double    not_before;
    uint32_t  max_uses;
    uint32_t  session_seconds;
    uint16_t  max_streams;
    uint8_t   tid_at, tid_len, sid_at, sid_len, net_at, net_len, uid_at, uid_len;
    uint8_t   scope_at, scope_len;
    u_char    bytes[PG_MEMO_BYTES];
} pg_slot_t;


typedef struct {
    ngx_flag_t  enable;
    ngx_int_t   logged_segment_chars;   /* the log map's longest plain segment */
    ngx_int_t   token_id_index;
    ngx_int_t   origin_path_index;
    ngx_int_t   is_manifest_index;
    ngx_int_t   log_method_index;
    ngx_int_t   log_path_index;
    ngx_int_t   log_reason_index;
    ngx_array_t *headers;               /* of pg_header_t: playgate_fast_header */
} pg_loc_conf_t;


/* A response header sent when its variable is not empty, whatever the status (add_header's
 * "always"), without add_header's script: one indexed variable, read as is. */
typedef struct {
    ngx_str_t   name;
    ngx_int_t   index;
} pg_header_t;


/* Per process: set in the master before the fork, or by the worker's own timer. */
static pg_key_t     pg_keys[PG_MAX_KEYS];
static ngx_uint_t   pg_nkeys;
static pg_policy_t  pg_policy;
static pg_slot_t   *pg_memo;        /* 2 * (pg_memo_mask + 1) slots, or NULL */
static ngx_uint_t   pg_memo_mask;
static double       pg_revisions_at = -1;   /* when the count was last read (ngx.now()) */
static uint32_t     pg_revisions = PG_NOT_CHECKED;
static ngx_flag_t   pg_overflow;        /* the feed gave up this load's view (read per tick) */
static u_char       pg_generation[32];  /* this load's generation (playgate_native.lua) */
static size_t       pg_generation_len;
static uint64_t     pg_memo_hits;       /* tokens authenticated from the memo (for the tests) */
static uint64_t     pg_lookups_skipped; /* requests whose revocation lookups were skipped */
static uint64_t     pg_allowed;
static u_char       pg_token[PG_MAX_TOKEN_CHARS / 4 * 3];
static const u_char pg_mapped_v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
/* The bytes a path may hold here: 0x21-0x7e but "\\", "?", "#", "%" and ";" (pg_init). */
static u_char       pg_path_char[256];
/* The bytes of a path segment the access log writes as they are (its map's regex). */
static u_char       pg_log_char[256];


static ngx_int_t pg_init(ngx_conf_t *cf);
static ngx_int_t pg_add_variables(ngx_conf_t *cf);
static char *pg_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static void *pg_create_loc_conf(ngx_conf_t *cf);

static ngx_http_output_header_filter_pt  pg_next_header_filter;
static char *pg_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);


static ngx_command_t  pg_commands[] = {

    { ngx_string("playgate_fast"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(pg_loc_conf_t, enable),
      NULL },

    { ngx_string("playgate_fast_logged_segment_chars"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(pg_loc_conf_t, logged_segment_chars),
      NULL },

    { ngx_string("playgate_fast_header"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      pg_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  pg_module_ctx = {
    pg_add_variables,       /* preconfiguration */
    pg_init,                /* postconfiguration */
    NULL, NULL, NULL, NULL, /* main, server */
    pg_create_loc_conf,
    pg_merge_loc_conf
};


ngx_module_t  ngx_http_playgate_module = {
    NGX_MODULE_V1,
    &pg_module_ctx,
    pg_commands,
    NGX_HTTP_MODULE,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING
};


/* --- Lua's side (playgate_native.lua, through the FFI) ------------------------------------- */

int playgate_fast_memo(size_t slots);

/* Lua: a new key ring is coming (init_worker_by_lua, in each worker). */
void
playgate_fast_reset(void)
{
    pg_nkeys = 0;
    ngx_memzero(&pg_policy, sizeof(pg_policy_t));
    (void) playgate_fast_memo(0);   /* nothing remembered outlives its key */
}


/* Lua: one key of the ring, as its HMAC states; 0, or -1 when it cannot be held (then its
 * tokens are declined here and Lua decides them). */
int
playgate_fast_add_key(const u_char *kid, size_t kid_len, const void *start,
    const void *session, const void *outer, size_t state_bytes)
{
    pg_key_t  *key;

    if (state_bytes != sizeof(SHA256_CTX) || kid_len == 0 || kid_len > PG_MAX_KID
        || pg_nkeys == PG_MAX_KEYS)
    {
        return -1;
    }

    key = &pg_keys[pg_nkeys++];
    ngx_memcpy(key->kid, kid, kid_len);
    key->kid_len = kid_len;
    ngx_memcpy(&key->start, start, sizeof(SHA256_CTX));
    ngx_memcpy(&key->session, session, sizeof(SHA256_CTX));
    ngx_memcpy(&key->outer, outer, sizeof(SHA256_CTX));
    return 0;
}


/* Lua: the policy this worker may decide with until ``until`` (ngx.now() seconds); usable 0
 * (no trusted revocation view, no dict) declines everything. */
void
playgate_fast_policy(int usable, double until, double leeway, double max_ttl,
    double max_session, int cat, int manifest_flag, void *zone, void *meta,
    const u_char *generation, size_t generation_len)
{
    if (generation_len > sizeof(pg_generation)) {
        usable = 0;
        generation_len = 0;
    }
    ngx_memcpy(pg_generation, generation, generation_len);
    pg_generation_len = generation_len;

    pg_policy.usable = usable && zone != NULL;
    pg_policy.until = until;
    pg_policy.leeway = leeway;
    pg_policy.max_ttl = max_ttl;
    pg_policy.max_session = max_session;
    pg_policy.cat = cat;
    pg_policy.manifest_flag = manifest_flag;
    pg_policy.zone = zone;
    pg_policy.meta = meta;
}


/* Lua: this worker's memo of authentic tokens, ``slots`` of them (a power of two, 0: none),
 * allocated after the fork (calloc: pages are taken when first written); 0, or -1 without the
 * memory (then every MAC is computed). */
int
playgate_fast_memo(size_t slots)
{
    free(pg_memo);
    pg_memo = NULL;
    pg_memo_mask = 0;

    if (slots < 2) {
        return 0;
    }

    pg_memo = calloc(slots, sizeof(pg_slot_t));
    if (pg_memo == NULL) {
        return -1;
    }

    pg_memo_mask = slots / 2 - 1;
    return 0;
}


/* Lua: the allows decided here since the last call (the metrics' flush adds them). */
uint64_t
playgate_fast_take_allowed(void)
{
    uint64_t  n = pg_allowed;

    pg_allowed = 0;
    return n;
}


/* Lua, for the tests: this worker's memo hits and skipped lookups so far. */
void
playgate_fast_counts(uint64_t *memo_hits, uint64_t *lookups_skipped)
{
    *memo_hits = pg_memo_hits;
    *lookups_skipped = pg_lookups_skipped;
}


/* --- the request ------------------------------------------------------------------------- */

/* base64url's values; 0x80 marks every other byte (padding too: tokens have none). */
static const u_char  pg_b64[256] = {
#define X 0x80
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, 62, X, X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, 63,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X
#undef X
};


/* Canonical base64url (the alphabet only, no padding, a length that is not 1 mod 4, zero
 * unused bits in the last character) into ``out``: the byte count, or -1. */
static ssize_t
pg_b64url(const u_char *s, size_t n, u_char *out)
{
    size_t    i, o;
    uint32_t  a, b, c, d;

    if (n % 4 == 1) {
        return -1;
    }

    o = 0;

    for (i = 0; i + 4 <= n; i += 4) {
        a = pg_b64[s[i]];
        b = pg_b64[s[i + 1]];
        c = pg_b64[s[i + 2]];
        d = pg_b64[s[i + 3]];

        if ((a | b | c | d) & 0x80) {
            return -1;
        }

        out[o++] = (u_char) (a << 2 | b >> 4);
        out[o++] = (u_char) (b << 4 | c >> 2);
        out[o++] = (u_char) (c << 6 | d);
    }

    switch (n - i) {

    case 2:
        a = pg_b64[s[i]];
        b = pg_b64[s[i + 1]];
        if (((a | b) & 0x80) || (b & 0x0f)) {
            return -1;
        }
        out[o++] = (u_char) (a << 2 | b >> 4);
        break;

    case 3:
        a = pg_b64[s[i]];
        b = pg_b64[s[i + 1]];
        c = pg_b64[s[i + 2]];
        if (((a | b | c) & 0x80) || (c & 0x03)) {
            return -1;
        }
        out[o++] = (u_char) (a << 2 | b >> 4);
        out[o++] = (u_char) (b << 4 | c >> 2);
        break;
    }

    return (ssize_t) o;
}


static uint32_t
pg_u32(const u_char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}


/* As Lua reads a 64-bit field: two doubles, the same rounding past 2^53. */
static double
pg_u64(const u_char *p)
{
    return (double) pg_u32(p) * 4294967296.0 + (double) pg_u32(p + 4);
}


static ngx_flag_t
pg_printable(const u_char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


/* Whether a path ends in ".m3u8" or ".mpd", letters in any case (playgate_native.lua). */
static ngx_flag_t
pg_is_manifest(const u_char *p, size_t n)
{
    if (n >= 5 && p[n - 5] == '.' && (p[n - 4] | 0x20) == 'm' && p[n - 3] == '3'
        && (p[n - 2] | 0x20) == 'u' && p[n - 1] == '8')
    {
        return 1;
    }

    return n >= 4 && p[n - 4] == '.' && (p[n - 3] | 0x20) == 'm'
           && (p[n - 2] | 0x20) == 'p' && (p[n - 1] | 0x20) == 'd';
}


/* A client network field (prefix length, then 4 or 16 address bytes; token.decode_network):
 * well formed, no host bits set, no IPv4-mapped IPv6 network. */
static ngx_flag_t
pg_network_ok(const u_char *raw, size_t n)
{
    size_t      i, first, prefix, bits;
    ngx_uint_t  keep;

    if (n != 5 && n != 17) {
        return 0;
    }

    prefix = raw[0];
    bits = 8 * (n - 1);
    if (prefix > bits) {
        return 0;
    }

    for (i = 0; i < n - 1; i++) {
        first = 8 * i;
        if (first >= prefix) {
            if (raw[1 + i] != 0) {
                return 0;
            }

        } else if (first + 8 > prefix) {
            keep = prefix - first;
            if (raw[1 + i] & (0xff >> keep)) {
                return 0;
            }
        }
    }

    return !(bits == 128 && prefix >= 96 && ngx_memcmp(raw + 1, pg_mapped_v4, 12) == 0);
}


/* Whether the packed client address (4 or 16 bytes; IPv4-mapped already 4) is in the network
 * ``raw`` (pg_network_ok). */
static ngx_flag_t
pg_in_network(const u_char *client, size_t client_len, const u_char *raw, size_t n)
{
    size_t  i, first, prefix;

    if (client == NULL || client_len != n - 1) {
        return 0;
    }

    prefix = raw[0];
    for (i = 0; i < client_len; i++) {
        first = 8 * i;
        if (first >= prefix) {
            return 1;
        }
        if (first + 8 <= prefix) {
            if (client[i] != raw[1 + i]) {
                return 0;
            }

        } else if ((client[i] ^ raw[1 + i]) & (0xff << (8 - (prefix - first)) & 0xff)) {
            return 0;
        }
    }

    return 1;
}


/* The viewer's address as packed bytes (an IPv4-mapped IPv6 address as IPv4), or NULL (a UNIX
 * socket: Lua reads the address as text there). */
static const u_char *
pg_client(ngx_connection_t *c, size_t *len)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) c->sockaddr;
        *len = 4;
        return (const u_char *) &sin->sin_addr;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) c->sockaddr;
        if (ngx_memcmp(sin6->sin6_addr.s6_addr, pg_mapped_v4, 12) == 0) {
            *len = 4;
            return sin6->sin6_addr.s6_addr + 12;
        }
        *len = 16;
        return sin6->sin6_addr.s6_addr;
#endif
    }

    return NULL;
}


/* One value of a Lua shared dict, as dict:get reads it: its type (0: none, 3: a number, 4: a
 * string) or -1 when the read fails; the number, or the string copied into ``str`` (up to
 * ``size`` bytes: ``*len``; a longer one is not copied). */
static int
pg_dict_get(ngx_shm_zone_t *zone, u_char *key, size_t key_len, double *num, u_char *str,
    size_t size, size_t *len)
{
    int      rc, type, flags, stale;
    char    *err;
    u_char   small[64], *buf;
    size_t   buf_len;

    buf = small;
    buf_len = sizeof(small);
    err = NULL;
    type = 0;
    *num = 0;
    *len = 0;

    rc = ngx_http_lua_ffi_shdict_get(zone, key, key_len, &type, &buf, &buf_len, num, &flags,
                                     0, &stale, &err);
    if (rc != 0) {
        return -1;
    }

    if (type == 4 && buf_len <= size) {
        ngx_memcpy(str, buf, buf_len);
        *len = buf_len;
    }

    if (buf != small) {     /* a longer string value: allocated for us */
        free(buf);
    }

    return type;
}


/* The feed's state, read once per ngx.now() tick, before that tick's lookups (as Lua's
 * usable_policy): its count of stored revocations (playgate_native.lua store_revocation), so
 * a token found clean is marked with a count no larger than the revocations it was looked up
 * in (PG_NOT_CHECKED when there is none yet, or past 32 bits: then nothing is skipped); and
 * whether it gave up this load's view (a revocation it could not store: give_up), after which
 * nothing is allowed here, as Lua allows nothing from the next tick on. */
static uint32_t
pg_revision_count(ngx_shm_zone_t *meta, double now)
{
    int      type;
    u_char   gave_up[sizeof(pg_generation)];
    size_t   len;
    double   num;

    if (now == pg_revisions_at) {
        return pg_revisions;
    }

    pg_revisions_at = now;
    pg_revisions = PG_NOT_CHECKED;
    pg_overflow = 1;

    if (meta == NULL) {
        return pg_revisions;
    }

    type = pg_dict_get(meta, (u_char *) "overflow", sizeof("overflow") - 1, &num, gave_up,
                       sizeof(gave_up), &len);
    if (type < 0 || (type != 0 && (type != 4 || (len == pg_generation_len
                                                 && ngx_memcmp(gave_up, pg_generation, len)
                                                    == 0))))
    {
        return pg_revisions;    /* given up, or cannot tell: pg_overflow stays set */
    }

    pg_overflow = 0;

    type = pg_dict_get(meta, (u_char *) "revisions", sizeof("revisions") - 1, &num, NULL, 0,
                       &len);
    if (type == 3 /* LUA_TNUMBER */ && num >= 0 && num < PG_NOT_CHECKED) {
        pg_revisions = (uint32_t) num;
    }

    return pg_revisions;
}


/* Whether the revocation key ``kind`` ":" ``len`` bytes revokes a token issued at ``nb``
 * (revoked() in playgate_native.lua): a token or session key by being there; a user or video
 * key when the token was issued at or before the revocation's time (its value). A lookup that
 * fails, or a value that is not a time, declines too (Lua decides). */
static ngx_flag_t
pg_revokes(ngx_shm_zone_t *zone, u_char kind, const u_char *at, size_t len, double nb)
{
    int      type;
    u_char   key[2 + PG_MAX_TOKEN_CHARS / 4 * 3];
    size_t   unused;
    double   num;

    /* A field of the token: at most its decoded size (a video id is the scope's, whose
     * length is 16 bits); anything longer is never looked up here. */
    if (len > sizeof(key) - 2) {
        return 1;
    }

    key[0] = kind;
    key[1] = ':';
    ngx_memcpy(key + 2, at, len);

    type = pg_dict_get(zone, key, len + 2, &num, NULL, 0, &unused);
    if (type < 0) {
        return 1;
    }

    if (type == 0) {        /* LUA_TNIL: not there */
        return 0;
    }

    if (kind == 't' || kind == 's') {
        return 1;
    }

    return type != 3 /* LUA_TNUMBER */ || nb <= num;
}


/* Whether the access log's map writes this path as it is (edge.conf.template's $pg_log_path:
 * every segment 1 to ``max`` of A-Z a-z 0-9 . _ -, maybe a last "/"; no "//" reaches here). */
static ngx_flag_t
pg_log_plain(const u_char *p, size_t n, size_t max)
{
    size_t  i, run;

    run = 0;
    for (i = 1; i < n; i++) {
        if (p[i] == '/') {
            run = 0;
        } else if (!pg_log_char[p[i]] || ++run > max) {
            return 0;
        }
    }

    return 1;
}


static void
pg_set(ngx_http_request_t *r, ngx_int_t index, u_char *data, size_t len)
{
    ngx_http_variable_value_t  *vv;

    vv = &r->variables[index];
    vv->data = data;
    vv->len = len;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->escape = 0;
}


static ngx_flag_t
pg_cta_header(ngx_http_request_t *r)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    u_char            ch;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof(PG_CTA_HEADER) - 1) {
            continue;
        }

        /* As nginx matches $http_cta_common_access_token: any case, "-" for "_". */
        for (n = 0; n < h[i].key.len; n++) {
            ch = h[i].key.data[n];
            if (ch >= 'A' && ch <= 'Z') {
                ch |= 0x20;
            } else if (ch == '-') {
                ch = '_';
            }
            if (ch != (u_char) PG_CTA_HEADER[n]) {
                break;
            }
        }

        if (n == h[i].key.len) {
            return 1;
        }
    }
}


typedef struct {
    u_char      *token_id;      /* in pg_token, until the next judgement */
    size_t       token_id_len;
    u_char      *path;          /* in the target */
    size_t       path_len;
    ngx_flag_t   manifest;
} pg_allow_t;


/* A token's claims, as offsets into its decoded bytes. */
typedef struct {
    double      expires_at;
    double      not_before;
    uint32_t    max_uses;
    uint32_t    session_seconds;
    unsigned    max_streams;
    size_t      tid_at, tid_len, sid_at, sid_len, net_at, net_len, uid_at, uid_len;
    size_t      scope_at, scope_len;
} pg_claims_t;


/* Authenticate and parse ``len`` decoded bytes at ``p`` (open_token): NGX_OK with ``c``, or
 * NGX_DECLINED for anything Lua would refuse (or that this code does not know). */
static ngx_int_t
pg_open(const u_char *p, size_t len, ngx_flag_t session, pg_claims_t *c)
{
    size_t       blen, kid_len, pos;
    ngx_uint_t   k;
    pg_key_t    *key;
    SHA256_CTX   ctx;
    u_char       mac[PG_MAC_BYTES];

    blen = len - PG_MAC_BYTES;
    kid_len = p[1];
    pos = 2 + kid_len;
    if (pos > blen) {
        return NGX_DECLINED;
    }

    key = NULL;
    for (k = 0; k < pg_nkeys; k++) {
        if (pg_keys[k].kid_len == kid_len && ngx_memcmp(pg_keys[k].kid, p + 2, kid_len) == 0) {
            key = &pg_keys[k];
            break;
        }
    }

    if (key == NULL) {
        return NGX_DECLINED;
    }

    ctx = session ? key->session : key->start;
    SHA256_Update(&ctx, p, blen);
    SHA256_Final(mac, &ctx);
    ctx = key->outer;
    SHA256_Update(&ctx, mac, PG_MAC_BYTES);
    SHA256_Final(mac, &ctx);

    if (CRYPTO_memcmp(mac, p + blen, PG_MAC_BYTES) != 0) {
        return NGX_DECLINED;
    }

    /* Authentic bytes from here; a field running past the body declines. */
    if (pos + 18 > blen) {
        return NGX_DECLINED;
    }

    c->expires_at = pg_u64(p + pos);
    c->not_before = pg_u64(p + pos + 8);
    c->scope_len = (size_t) p[pos + 16] << 8 | p[pos + 17];
    pos += 18;

    if (c->scope_len == 0 || pos + c->scope_len > blen || p[pos] != '/'
        || p[pos + c->scope_len - 1] != '/')
    {
        return NGX_DECLINED;
    }

    c->scope_at = pos;
    pos += c->scope_len;

    /* token id, session id, network, user id: a length byte each */
#define PG_FIELD(at, flen)                                                    \
    if (pos >= blen || pos + 1 + p[pos] > blen) {                             \
        return NGX_DECLINED;                                                  \
    }                                                                         \
    flen = p[pos];                                                            \
    at = pos + 1;                                                             \
    pos = at + flen

    PG_FIELD(c->tid_at, c->tid_len);
    PG_FIELD(c->sid_at, c->sid_len);
    PG_FIELD(c->net_at, c->net_len);
    PG_FIELD(c->uid_at, c->uid_len);
#undef PG_FIELD

    if (pos + 6 > blen) {
        return NGX_DECLINED;
    }

    c->max_uses = pg_u32(p + pos);
    c->max_streams = (unsigned) p[pos + 4] << 8 | p[pos + 5];
    pos += 6;

    c->session_seconds = 0;
    if (p[0] == 2) {
        if (pos + 4 > blen) {
            return NGX_DECLINED;
        }
        c->session_seconds = pg_u32(p + pos);
        pos += 4;
        if (c->session_seconds == 0) {
            return NGX_DECLINED;
        }
    }

    if (pos != blen || c->tid_len == 0
        || (c->net_len != 0 && !pg_network_ok(p + c->net_at, c->net_len))
        || !pg_printable(p + c->scope_at, c->scope_len)
        || !pg_printable(p + c->tid_at, c->tid_len)
        || !pg_printable(p + c->sid_at, c->sid_len)
        || !pg_printable(p + c->uid_at, c->uid_len))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* Whether ``slot`` remembers these bytes, of this kind. The MAC in constant time: only a
 * sender who already holds the remembered token's MAC (its secret part) gets to the body,
 * compared as plain bytes. */
static ngx_flag_t
pg_holds(const pg_slot_t *slot, const u_char *p, size_t len, ngx_flag_t session)
{
    size_t  blen = len - PG_MAC_BYTES;

    return slot->len == len && slot->session == session
           && CRYPTO_memcmp(slot->bytes + blen, p + blen, PG_MAC_BYTES) == 0
           && ngx_memcmp(slot->bytes, p, blen) == 0;
}


static void
pg_remember(pg_slot_t *slot, const u_char *p, size_t len, ngx_flag_t session,
    const pg_claims_t *c)
{
    slot->len = (uint16_t) len;
    slot->session = (uint8_t) session;
    slot->clean = PG_NOT_CHECKED;   /* a new token never inherits the slot's mark */
    slot->expires_at = c->expires_at;
    slot->not_before = c->not_before;
    slot->max_uses = c->max_uses;
    slot->session_seconds = c->session_seconds;
    slot->max_streams = (uint16_t) c->max_streams;
    slot->tid_at = (uint8_t) c->tid_at;
    slot->tid_len = (uint8_t) c->tid_len;
    slot->sid_at = (uint8_t) c->sid_at;
    slot->sid_len = (uint8_t) c->sid_len;
    slot->net_at = (uint8_t) c->net_at;
    slot->net_len = (uint8_t) c->net_len;
    slot->uid_at = (uint8_t) c->uid_at;
    slot->uid_len = (uint8_t) c->uid_len;
    slot->scope_at = (uint8_t) c->scope_at;
    slot->scope_len = (uint8_t) c->scope_len;
    ngx_memcpy(slot->bytes, p, len);
}


static void
pg_recall(const pg_slot_t *slot, pg_claims_t *c)
{
    c->expires_at = slot->expires_at;
    c->not_before = slot->not_before;
    c->max_uses = slot->max_uses;
    c->session_seconds = slot->session_seconds;
    c->max_streams = slot->max_streams;
    c->tid_at = slot->tid_at;
    c->tid_len = slot->tid_len;
    c->sid_at = slot->sid_at;
    c->sid_len = slot->sid_len;
    c->net_at = slot->net_at;
    c->net_len = slot->net_len;
    c->uid_at = slot->uid_at;
    c->uid_len = slot->uid_len;
    c->scope_at = slot->scope_at;
    c->scope_len = slot->scope_len;
}


/* Whether any revocation in the dict revokes the token (or a lookup cannot say). */
static ngx_flag_t
pg_revoked(ngx_shm_zone_t *zone, const u_char *p, const pg_claims_t *c)
{
    size_t  first, last, i;
    double  nb = c->not_before;

    if (pg_revokes(zone, 't', p + c->tid_at, c->tid_len, nb)
        || (c->sid_len > 0 && pg_revokes(zone, 's', p + c->sid_at, c->sid_len, nb))
        || (c->uid_len > 0 && pg_revokes(zone, 'u', p + c->uid_at, c->uid_len, nb)))
    {
        return 1;
    }

    /* "/videos/<id>/": the id not empty and without "/" */
    if (c->scope_len > 9 && ngx_memcmp(p + c->scope_at, "/videos/", 8) == 0) {
        first = c->scope_at + 8;
        last = c->scope_at + c->scope_len - 2;
        for (i = first; i <= last && p[i] != '/'; i++) { /* void */ }
        if (i > last && pg_revokes(zone, 'v', p + first, last - first + 1, nb)) {
            return 1;
        }
    }

    return 0;
}


/* The fast path's judgement of a raw target at ``now`` under ``pol``: NGX_OK when it is
 * plainly allowed (``out`` then says what to log and fetch), NGX_DECLINED for anything else.
 * ``client``: the viewer's packed address (NULL: unknown). The revocation dict is consulted
 * when ``pol->zone`` is set. */
static ngx_int_t
pg_judge(u_char *t, size_t n, const u_char *client, size_t client_len, double now,
    const pg_policy_t *pol, pg_allow_t *out)
{
    u_char       *end, *tok, *path, *p, *s;
    size_t        tok_len, path_len, len;
    ssize_t       decoded;
    uint32_t      revisions;
    ngx_uint_t    way;
    ngx_flag_t    session, manifest;
    double        longest;
    pg_slot_t    *set, *slot;
    pg_claims_t   c;

    end = t + n;

    if (n < 5 || t[0] != '/' || t[2] != '/' || (t[1] != 't' && t[1] != 's')) {
        return NGX_DECLINED;
    }

    session = t[1] == 's';
    tok = t + 3;
    path = memchr(tok, '/', end - tok);
    if (path == NULL) {
        return NGX_DECLINED;
    }
    tok_len = path - tok;
    path_len = end - path;

    /* The path: printable ASCII without space or backslash, and none of what Lua reads
     * further (a query, a fragment, an escape, a ";"); no "//" and no "/." (a "/./" or "/../"
     * Lua refuses, a "/.x" Lua decides). The token's characters are base64url's, or its
     * decoding declines. */
    for (s = path; s < end; s++) {
        if (!pg_path_char[*s] || (s[0] == '/' && s + 1 < end && (s[1] == '/' || s[1] == '.'))) {
            return NGX_DECLINED;
        }
    }

    if (tok_len == 0 || tok_len > PG_MAX_TOKEN_CHARS
        || (pol->cat && !session && tok[0] != 'A'))
    {
        return NGX_DECLINED;
    }

    decoded = pg_b64url(tok, tok_len, pg_token);
    if (decoded < 2 + PG_MAC_BYTES) {
        return NGX_DECLINED;
    }

    p = pg_token;
    len = (size_t) decoded;
    if (p[0] != 1 && p[0] != 2) {
        return NGX_DECLINED;
    }

    /* The memo: these very bytes authenticated and parsed before (the key ring is the
     * worker's for life), else the MAC and the parse, then remembered in the set's way not
     * used last. The set: the MAC's last three bytes (any token's, chosen by its sender). */
    set = NULL;
    slot = NULL;
    if (pg_memo != NULL && len <= PG_MEMO_BYTES) {
        set = pg_memo + 2 * (((size_t) p[len - 3] << 16 | p[len - 2] << 8 | p[len - 1])
                             & pg_memo_mask);
        for (way = 0; way < 2; way++) {
            if (pg_holds(&set[way], p, len, session)) {
                slot = &set[way];
                set->recent = (uint8_t) way;
                break;
            }
        }
    }

    if (slot != NULL) {
        pg_recall(slot, &c);
        pg_memo_hits++;

    } else {
        if (pg_open(p, len, session, &c) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (set != NULL) {
            way = 1 - set->recent;
            set->recent = (uint8_t) way;
            slot = &set[way];
            pg_remember(slot, p, len, session, &c);
        }
    }

    /* The checks of decide(), in Lua's arithmetic. */
    if (now > c.expires_at + pol->leeway || now + pol->leeway < c.not_before) {
        return NGX_DECLINED;
    }

    longest = session ? pol->max_session : pol->max_ttl;
    if (c.expires_at - c.not_before > longest) {
        return NGX_DECLINED;
    }

    if (path_len < c.scope_len || ngx_memcmp(path, p + c.scope_at, c.scope_len) != 0) {
        return NGX_DECLINED;
    }

    if (c.net_len != 0 && !pg_in_network(client, client_len, p + c.net_at, c.net_len)) {
        return NGX_DECLINED;
    }

    manifest = pg_is_manifest(path, path_len);

    if ((!session && c.session_seconds > 0 && manifest) || c.max_uses > 0 || c.max_streams > 0)
    {
        return NGX_DECLINED;    /* a session to open, counted uses or streams */
    }

    /* Revocations: a remembered token found in none when the feed had stored ``revisions``
     * of them, and none stored since, is in none now (a revocation is only ever added); its
     * lookups are skipped. */
    if (pol->zone != NULL) {
        revisions = pg_revision_count(pol->meta, now);
        if (pg_overflow) {
            return NGX_DECLINED;
        }
        if (slot == NULL || revisions == PG_NOT_CHECKED || slot->clean != revisions) {
            if (pg_revoked(pol->zone, p, &c)) {
                return NGX_DECLINED;
            }
            if (slot != NULL) {
                slot->clean = revisions;
            }

        } else {
            pg_lookups_skipped++;
        }
    }

    out->token_id = p + c.tid_at;
    out->token_id_len = c.tid_len;
    out->path = path;
    out->path_len = path_len;
    out->manifest = manifest;
    return NGX_OK;
}


/* Tests (the native verifier's test location, playgate_native.fast_verdict): the fast path's
 * judgement of ``target`` from ``client`` (packed, NULL: unknown) at ``now`` with this policy
 * and no revocation dict: 1 allowed (the
 * token id copied to ``tid``, up to 255 bytes), 0 declined. */
int
playgate_fast_judge(const u_char *target, size_t len, const u_char *client,
    size_t client_len, double now, double leeway, double max_ttl, double max_session, int cat,
    u_char *tid, size_t *tid_len)
{
    pg_policy_t  pol;
    pg_allow_t   out;

    ngx_memzero(&pol, sizeof(pg_policy_t));
    pol.leeway = leeway;
    pol.max_ttl = max_ttl;
    pol.max_session = max_session;
    pol.cat = cat;

    if (pg_judge((u_char *) target, len, client, client_len, now, &pol, &out) != NGX_OK) {
        return 0;
    }

    ngx_memcpy(tid, out.token_id, out.token_id_len);
    *tid_len = out.token_id_len;
    return 1;
}


static ngx_int_t
pg_access_handler(ngx_http_request_t *r)
{
    u_char                     *copy;
    size_t                      client_len;
    double                      now;
    const u_char               *client;
    pg_allow_t                  out;
    ngx_time_t                 *tp;
    pg_loc_conf_t              *lcf;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_http_phase_handler_t   *ph;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_playgate_module);

    if (!lcf->enable || r != r->main || !pg_policy.usable
        || !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)))
    {
        return NGX_DECLINED;
    }

    tp = ngx_timeofday();
    now = (double) tp->sec + (double) tp->msec / 1000.0;   /* ngx.now() */

    client_len = 0;
    client = pg_client(r->connection, &client_len);

    if (now > pg_policy.until || pg_cta_header(r)
        || pg_judge(r->unparsed_uri.data, r->unparsed_uri.len, client, client_len, now,
                    &pg_policy, &out)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* Allowed: what the template's maps would cut, and the logged token id. */
    copy = ngx_pnalloc(r->pool, out.token_id_len + out.path_len);
    if (copy == NULL) {
        return NGX_DECLINED;
    }
    ngx_memcpy(copy, out.token_id, out.token_id_len);
    ngx_memcpy(copy + out.token_id_len, out.path, out.path_len);
    pg_set(r, lcf->token_id_index, copy, out.token_id_len);
    pg_set(r, lcf->origin_path_index, copy + out.token_id_len, out.path_len);
    if (pg_policy.manifest_flag) {
        pg_set(r, lcf->is_manifest_index, (u_char *) (out.manifest ? "1" : "0"), 1);
    }

    /* The access log's maps, answered here: the method (GET or HEAD), the path when the map
     * would write it as it is (else the map decides), and no reason (an allow has none). */
    if (r->method == NGX_HTTP_GET) {
        pg_set(r, lcf->log_method_index, (u_char *) "GET", 3);
    } else {
        pg_set(r, lcf->log_method_index, (u_char *) "HEAD", 4);
    }
    if (lcf->logged_segment_chars > 0
        && pg_log_plain(out.path, out.path_len, (size_t) lcf->logged_segment_chars))
    {
        pg_set(r, lcf->log_path_index, copy + out.token_id_len, out.path_len);
    }
    pg_set(r, lcf->log_reason_index, (u_char *) "", 0);

    pg_allowed++;

    /* The rest of the access phase (the Lua verifier) is skipped: on to post-access, which
     * the checker's increment reaches (ph->next is the phase after it). */
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);
    ph = &cmcf->phase_engine.handlers[r->phase_handler];
    r->phase_handler = ph->next - 2;

    return NGX_OK;
}


/* The location's playgate_fast_header lines: each header whose variable is not empty. Main
 * requests only, as add_header. */
static ngx_int_t
pg_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    pg_header_t                *hd;
    pg_loc_conf_t              *lcf;
    ngx_table_elt_t            *h;
    ngx_http_variable_value_t  *vv;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_playgate_module);

    if (lcf->headers == NULL || r != r->main) {
        return pg_next_header_filter(r);
    }

    hd = lcf->headers->elts;
    for (i = 0; i < lcf->headers->nelts; i++) {
        vv = ngx_http_get_indexed_variable(r, hd[i].index);
        if (vv == NULL || vv->not_found || vv->len == 0) {
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        h->key = hd[i].name;
        h->value.len = vv->len;
        h->value.data = vv->data;
    }

    return pg_next_header_filter(r);
}


/* What the access check hands to the response and the log (the token id, the reason, a
 * renewed CAT, its cookie, a renewal): empty unless the Lua verifier (or the validator
 * through it) sets them; the template's `set $pg_... ""` lines, which ran on every request,
 * are not needed where this module is loaded. */
static ngx_str_t  pg_check_variables[] = {
    ngx_string("pg_token_id"),
    ngx_string("pg_reason"),
    ngx_string("pg_cat_renewed"),
    ngx_string("pg_cat_cookie"),
    ngx_string("pg_renewal"),
    ngx_null_string
};


static ngx_int_t
pg_empty_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data)
{
    v->len = 0;
    v->data = (u_char *) "";
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    return NGX_OK;
}


static ngx_int_t
pg_add_variables(ngx_conf_t *cf)
{
    ngx_str_t            *name;
    ngx_http_variable_t  *var;

    for (name = pg_check_variables; name->len; name++) {
        var = ngx_http_add_variable(cf, name, NGX_HTTP_VAR_CHANGEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }
        var->get_handler = pg_empty_variable;
    }

    return NGX_OK;
}


/* playgate_fast_header <name> $<variable>; */
static char *
pg_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    pg_loc_conf_t  *lcf = conf;

    ngx_str_t      *value, var;
    pg_header_t    *hd;

    value = cf->args->elts;

    if (value[2].len < 2 || value[2].data[0] != '$') {
        return "takes a header name and one $variable";
    }

    if (lcf->headers == NULL) {
        lcf->headers = ngx_array_create(cf->pool, 4, sizeof(pg_header_t));
        if (lcf->headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    hd = ngx_array_push(lcf->headers);
    if (hd == NULL) {
        return NGX_CONF_ERROR;
    }

    var.data = value[2].data + 1;
    var.len = value[2].len - 1;
    hd->name = value[1];
    hd->index = ngx_http_get_variable_index(cf, &var);
    if (hd->index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* --- configuration ----------------------------------------------------------------------- */

static void *
pg_create_loc_conf(ngx_conf_t *cf)
{
    pg_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(pg_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->logged_segment_chars = NGX_CONF_UNSET;
    conf->token_id_index = NGX_ERROR;
    conf->origin_path_index = NGX_ERROR;
    conf->is_manifest_index = NGX_ERROR;
    return conf;
}


static char *
pg_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    pg_loc_conf_t  *prev = parent;
    pg_loc_conf_t  *conf = child;
    ngx_str_t       token_id = ngx_string("pg_log_token_id");
    ngx_str_t       origin_path = ngx_string("pg_origin_path");
    ngx_str_t       is_manifest = ngx_string("pg_is_manifest");
    ngx_str_t       log_method = ngx_string("pg_log_method");
    ngx_str_t       log_path = ngx_string("pg_log_path");
    ngx_str_t       log_reason = ngx_string("pg_log_reason");

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->logged_segment_chars, prev->logged_segment_chars, 0);

    /* Inherited as add_header is (limit_except's nested location answers with them too). */
    if (conf->headers == NULL) {
        conf->headers = prev->headers;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    /* The variables the template's maps define (edge.conf.template). */
    conf->token_id_index = ngx_http_get_variable_index(cf, &token_id);
    conf->origin_path_index = ngx_http_get_variable_index(cf, &origin_path);
    conf->is_manifest_index = ngx_http_get_variable_index(cf, &is_manifest);
    conf->log_method_index = ngx_http_get_variable_index(cf, &log_method);
    conf->log_path_index = ngx_http_get_variable_index(cf, &log_path);
    conf->log_reason_index = ngx_http_get_variable_index(cf, &log_reason);

    if (conf->token_id_index == NGX_ERROR || conf->origin_path_index == NGX_ERROR
        || conf->is_manifest_index == NGX_ERROR || conf->log_method_index == NGX_ERROR
        || conf->log_path_index == NGX_ERROR || conf->log_reason_index == NGX_ERROR)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
pg_init(ngx_conf_t *cf)
{
    ngx_uint_t                  c;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    for (c = 0x21; c <= 0x7e; c++) {
        pg_path_char[c] = c != '\\' && c != '?' && c != '#' && c != '%' && c != ';';
        pg_log_char[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                         || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* Pushed after lua-nginx-module's (loaded before this module): runs before it. */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = pg_access_handler;

    pg_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = pg_header_filter;
    return NGX_OK;
}
