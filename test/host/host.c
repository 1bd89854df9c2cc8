/*
 * host: loads a Fluent Bit Go output plugin (.so) and drives it the way Fluent Bit's Go proxy
 * does (src/flb_plugin_proxy.c, src/proxy/go/go.c, src/flb_output.c upstream; summary in
 * FLUENT_BIT_ABI.md), so the plugin's ABI can be tested without Fluent Bit.
 *
 * Usage: host [--max-retries N] [--retry-delay-ms MS] [--no-ctx] PLUGIN.so SCRIPT
 *
 *   --max-retries N      a flush answered FLB_RETRY is sent again, byte for byte, up to N more
 *                        times (Fluent Bit's scheduler does the same; default 0)
 *   --retry-delay-ms MS  pause before each resend (default 100)
 *   --no-ctx             behave like a Fluent Bit that predates the context API: ignore
 *                        FLBPluginFlushCtx and FLBPluginExitCtx, call FLBPluginFlush and
 *                        FLBPluginExit
 *
 * What it does, in Fluent Bit's order:
 *   dlopen(RTLD_LAZY); FLBPluginPreRegister(0) if exported; FLBPluginRegister(def) with a
 *   calloc'd def (type preset to output, sized beyond every known layout; the plugin fills type,
 *   proxy, name, description); dlsym FLBPluginInit, FLBPluginFlush[Ctx], FLBPluginExit[Ctx];
 *   one malloc'd struct flbgo_output_plugin for the .so, whose o_ins and context are pointed at
 *   each instance before its FLBPluginInit; FLBPluginOutputPreRun(0) if exported before the
 *   first flush; FLBPluginFlushCtx(context->remote_context, data, size, tag) with data and tag in
 *   fresh malloc'd buffers that are overwritten and freed as soon as the call returns (so a
 *   plugin that keeps them reads garbage or trips a sanitizer); FLBPluginOutputPreExit(0) if
 *   exported and FLBPluginExitCtx(remote_context) per instance, its context freed after; and
 *   FLBPluginUnregister(def) last.
 *
 * SCRIPT has one command per line; a word starting with '#' starts a comment. Relative paths
 * are relative to the SCRIPT's directory.
 *
 *   instance NAME PROPS       new [OUTPUT] instance; PROPS has "key value" lines (classic
 *                             config: '#' lines are comments, ${VAR} is expanded, an empty
 *                             value is absent, Fluent Bit's own keys such as match, alias,
 *                             workers, retry_limit are consumed and never reach the plugin);
 *                             runs FLBPluginInit and prints "init NAME rc=N". rc <= 0 makes
 *                             the host refuse to start as Fluent Bit does: every instance
 *                             created so far gets its exit callback, the plugin is
 *                             unregistered, and the host exits with status 2.
 *   flush NAME CHUNK TAG      one flush, resent on FLB_RETRY as --max-retries says; prints
 *                             "flush NAME rc=N tries=K ms=T" (rc of the last try)
 *   concurrent NAME THREADS TAG CHUNK...
 *                             THREADS threads start together; each flushes every CHUNK once
 *                             (thread i starts at CHUNK i, so different chunks are in flight
 *                             at once), with resends; one line per flush
 *                             "cflush NAME thread=I chunk=FILE rc=N tries=K", then
 *                             "concurrent NAME flushes=F ok=A retry=B error=C other=D"
 *   workers NAME N TAG LIST   Fluent Bit's `workers N`: N threads take the chunks named in
 *                             file LIST (one path per line) from one queue, each chunk flushed
 *                             once by one thread, at most N flushes of NAME at once; a chunk
 *                             answered FLB_RETRY is resent by the thread that holds it. One
 *                             line per chunk "wflush NAME thread=I chunk=FILE rc=N tries=K",
 *                             then "workers NAME flushes=F ok=A retry=B error=C other=D
 *                             max_inflight=M" (M: most flushes of NAME seen at once)
 *   background NAME CHUNK TAG like flush, on its own thread; prints "bflush ..." when done
 *   wait                      joins every background flush
 *   sleep MS
 *   exit NAME                 FLBPluginOutputPreExit(0) if exported, then FLBPluginExitCtx
 *                             (else FLBPluginExit); prints "exit NAME rc=N ms=T". May be
 *                             repeated: the context is freed, the remote context is passed again.
 *   unregister                FLBPluginUnregister(def); prints "unregister". May be repeated.
 *
 * At the end: "exit" for every instance not yet exited, "unregister" unless done, then "done".
 *
 * Exit status: 0 fine; 1 usage, script or file error; 2 an FLBPluginInit failed (start
 * refused); 3 the plugin broke the ABI (bad registration, wrote into a chunk, read a property
 * outside FLBPluginInit, returned a code Fluent Bit does not know, succeeded in FLBPluginInit
 * without setting a context). Violations are printed as "violation: ...".
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Return codes (flb_output.h) and proxy ids (flb_plugin_proxy.h). */
#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11

/* include/fluent-bit/flb_plugin_proxy.h */
struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;   /* newer Fluent Bit; fluent-bit-go does not know these fields */
    void *config_map;
};
/* Fluent Bit may grow the def again: allocate far more than any layout and check that the
 * plugin wrote nothing past the fields fluent-bit-go knows. */
#define DEF_ALLOC 512

/* include/fluent-bit/flb_api.h; the instance pointers are the host's struct instance. */
struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
};

struct mk_list {
    struct mk_list *prev, *next;
};

struct flb_plugin_proxy {
    struct flb_plugin_proxy_def *def;
    struct flb_api *api;
    void *instance;
    void *dso_handler;
    void *data;
    struct mk_list _head;
};

struct flb_plugin_proxy_context {
    void *remote_context; /* set by the plugin (FLBPluginSetContext) during FLBPluginInit */
    struct flb_plugin_proxy *proxy;
};

/* src/proxy/go/go.h */
struct flbgo_output_plugin {
    char *name;
    void *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;

    int (*cb_init)(struct flbgo_output_plugin *);
    int (*cb_flush)(const void *, size_t, const char *);
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_exit)(void);
    int (*cb_exit_ctx)(void *);
};

/* The host's [OUTPUT] instance (Fluent Bit's struct flb_output_instance, reduced). */
struct prop {
    char *key;
    char *val; /* NULL: the key was given with an empty value, which Fluent Bit treats as absent */
};

struct instance {
    char name[64];
    struct prop *props;
    int nprops;
    struct flb_plugin_proxy_context *context; /* calloc'd per instance, freed after exit */
    void *remote_context;                     /* context->remote_context after init */
    atomic_int exited;
};

struct chunk {
    char *path;
    unsigned char *data;
    size_t size;
};

#define MAX_INSTANCES 32
#define MAX_BACKGROUND 64
#define MAX_WORDS 128

static struct {
    const char *script_dir;
    int max_retries;
    int retry_delay_ms;
    int no_ctx;

    void *dso;
    struct flb_plugin_proxy proxy;
    struct flb_api api;
    struct flbgo_output_plugin *plugin;
    int (*pre_run)(int);
    void (*pre_exit)(int);
    int pre_run_done;
    int unregistered;

    struct instance instances[MAX_INSTANCES];
    int ninstances;

    pthread_t background[MAX_BACKGROUND];
    int nbackground;

    atomic_int in_init;    /* an FLBPluginInit is running */
    atomic_int violations; /* ABI violations seen */
    pthread_mutex_t out;   /* whole lines on stdout */
} host = {.max_retries = 0, .retry_delay_ms = 100, .out = PTHREAD_MUTEX_INITIALIZER};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&host.out);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&host.out);
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    va_list ap;
    atomic_fetch_add(&host.violations, 1);
    pthread_mutex_lock(&host.out);
    fputs("violation: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&host.out);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("host: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        die("out of memory");
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static char *resolve(const char *path)
{
    size_t a, b;
    char *out;
    if (path[0] == '/' || !host.script_dir) {
        return xstrdup(path);
    }
    a = strlen(host.script_dir);
    b = strlen(path);
    out = xmalloc(a + b + 2);
    memcpy(out, host.script_dir, a);
    out[a] = '/';
    memcpy(out + a + 1, path, b + 1);
    return out;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (!f) {
        die("%s: %s", path, strerror(errno));
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (!buf) {
                die("out of memory");
            }
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        die("%s: read error", path);
    }
    fclose(f);
    *size = len;
    return buf;
}

/* ------------------------------------------------------------------ properties */

static const char *core_keys[] = {
    /* consumed by flb_output_new / flb_output_set_property; never in o_ins->properties */
    "name", "match", "match_regex", "alias", "host", "port", "ipv6", "keepalive",
    "keepalive_timeout", "retry_limit", "workers", "log_level", "log_suppress_interval",
    "storage.total_limit_size", "tls", "tls.verify", "tls.debug", "tls.vhost", "tls.ca_path",
    "tls.ca_file", "tls.crt_file", "tls.key_file", "tls.key_passwd", "processors", NULL,
};

static int is_core_key(const char *k)
{
    int i;
    if (strncasecmp(k, "net.", 4) == 0) {
        return 1;
    }
    for (i = 0; core_keys[i]; i++) {
        if (strcasecmp(core_keys[i], k) == 0) {
            return 1;
        }
    }
    return 0;
}

/* flb_env_var_translate: ${VAR} becomes the variable's value, or nothing when unset. */
static char *expand_env(const char *v)
{
    size_t cap = strlen(v) + 1, len = 0;
    char *out = xmalloc(cap);
    while (*v) {
        const char *end;
        if (v[0] == '$' && v[1] == '{' && (end = strchr(v + 2, '}')) != NULL) {
            char name[256];
            size_t n = (size_t)(end - (v + 2));
            const char *val = NULL;
            if (n < sizeof(name)) {
                memcpy(name, v + 2, n);
                name[n] = '\0';
                val = getenv(name);
            }
            if (val) {
                size_t vl = strlen(val);
                if (len + vl + 1 > cap) {
                    cap = len + vl + 1 + strlen(end);
                    out = realloc(out, cap);
                    if (!out) {
                        die("out of memory");
                    }
                }
                memcpy(out + len, val, vl);
                len += vl;
            }
            v = end + 1;
            continue;
        }
        if (len + 2 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            if (!out) {
                die("out of memory");
            }
        }
        out[len++] = *v++;
    }
    out[len] = '\0';
    return out;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        *--e = '\0';
    }
    return s;
}

static void load_props(struct instance *in, const char *path)
{
    size_t size;
    char *text = (char *)read_all(path, &size), *line, *save = NULL;
    text = realloc(text, size + 1);
    if (!text) {
        die("out of memory");
    }
    text[size] = '\0';
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *key = trim(line), *val = key;
        if (*key == '\0' || *key == '#') {
            continue;
        }
        while (*val && !isspace((unsigned char)*val)) {
            val++;
        }
        if (*val) {
            *val++ = '\0';
        }
        val = trim(val);
        if (is_core_key(key)) {
            continue;
        }
        in->props = realloc(in->props, sizeof(struct prop) * (size_t)(in->nprops + 1));
        if (!in->props) {
            die("out of memory");
        }
        in->props[in->nprops].key = xstrdup(key);
        in->props[in->nprops].val = expand_env(val);
        if (in->props[in->nprops].val[0] == '\0') { /* flb_output_set_property: empty = NULL */
            free(in->props[in->nprops].val);
            in->props[in->nprops].val = NULL;
        }
        in->nprops++;
    }
    free(text);
}

/* api->output_get_property: flb_output_get_property -> flb_kv_get_key_value: the first key of
 * equal length that matches ignoring case; NULL when absent. */
static const char *output_get_property(const char *key, void *o_ins)
{
    struct instance *in = o_ins;
    size_t len;
    int i;
    if (!atomic_load(&host.in_init)) {
        violation("output_get_property(\"%s\") called outside FLBPluginInit: o_ins then points "
                  "at whichever instance was initialized last",
                  key ? key : "(null)");
    }
    if (!key || !in || (len = strlen(key)) == 0) {
        return NULL;
    }
    for (i = 0; i < in->nprops; i++) {
        if (strlen(in->props[i].key) == len && strncasecmp(in->props[i].key, key, len) == 0) {
            return in->props[i].val;
        }
    }
    return NULL;
}

static void log_print(int level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&host.out);
    fprintf(stderr, "[host log_print level=%d %s:%d] ", level, file ? file : "", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&host.out);
}

static int output_log_check(void *ins, int level)
{
    (void)ins;
    (void)level;
    return 1;
}

/* ------------------------------------------------------------------ plugin lifecycle */

static void *sym(const char *name)
{
    void *s;
    dlerror();
    s = dlsym(host.dso, name);
    if (dlerror() != NULL) {
        return NULL;
    }
    return s;
}

static void load(const char *path)
{
    int (*pre_register)(int);
    int (*reg)(struct flb_plugin_proxy_def *);
    struct flb_plugin_proxy_def *def;
    unsigned char *tail;
    size_t i;
    int ret;

    host.dso = dlopen(path, RTLD_LAZY);
    if (!host.dso) {
        die("dlopen %s: %s", path, dlerror());
    }
    host.api.output_get_property = output_get_property;
    host.api.log_print = log_print;
    host.api.output_log_check = output_log_check;
    host.proxy.api = &host.api;
    host.proxy.dso_handler = host.dso;

    def = calloc(1, DEF_ALLOC);
    if (!def) {
        die("out of memory");
    }
    def->type = FLB_PROXY_OUTPUT_PLUGIN; /* flb_plugin_proxy_create presets the type */
    host.proxy.def = def;

    pre_register = (int (*)(int))sym("FLBPluginPreRegister");
    if (pre_register) {
        ret = pre_register(0);
        say("preregister rc=%d", ret);
        if (ret == -1) {
            die("FLBPluginPreRegister failed");
        }
    }
    reg = (int (*)(struct flb_plugin_proxy_def *))sym("FLBPluginRegister");
    if (!reg) {
        die("%s does not export FLBPluginRegister", path);
    }
    ret = reg(def);
    say("register rc=%d name=%s type=%d proxy=%d flags=%d description=%s", ret,
        def->name ? def->name : "(null)", def->type, def->proxy, def->flags,
        def->description ? def->description : "(null)");
    if (ret == -1 || def->type != FLB_PROXY_OUTPUT_PLUGIN || def->proxy != FLB_PROXY_GOLANG ||
        !def->name || !def->name[0]) {
        violation("FLBPluginRegister must return 0 and set type %d, proxy %d and a name",
                  FLB_PROXY_OUTPUT_PLUGIN, FLB_PROXY_GOLANG);
    }
    /* Fluent Bit reads event_type (0 = logs) and config_map (NULL = none) after registration. */
    if (def->event_type != 0 || def->config_map != NULL) {
        violation("FLBPluginRegister set event_type or config_map, which this plugin does not own");
    }
    tail = (unsigned char *)def + sizeof(struct flb_plugin_proxy_def);
    for (i = 0; i < DEF_ALLOC - sizeof(struct flb_plugin_proxy_def); i++) {
        if (tail[i] != 0) {
            violation("FLBPluginRegister wrote past the end of struct flb_plugin_proxy_def");
            break;
        }
    }

    /* proxy_go_output_register */
    host.plugin = malloc(sizeof(*host.plugin));
    if (!host.plugin) {
        die("out of memory");
    }
    memset(host.plugin, 0xA5, sizeof(*host.plugin)); /* flb_malloc: nothing is zeroed */
    host.plugin->cb_init = (int (*)(struct flbgo_output_plugin *))sym("FLBPluginInit");
    if (!host.plugin->cb_init) {
        die("%s does not export FLBPluginInit", path);
    }
    host.plugin->cb_flush = (int (*)(const void *, size_t, const char *))sym("FLBPluginFlush");
    host.plugin->cb_flush_ctx = (int (*)(void *, const void *, size_t, char *))sym("FLBPluginFlushCtx");
    host.plugin->cb_exit = (int (*)(void))sym("FLBPluginExit");
    host.plugin->cb_exit_ctx = (int (*)(void *))sym("FLBPluginExitCtx");
    if (host.no_ctx) {
        host.plugin->cb_flush_ctx = NULL;
        host.plugin->cb_exit_ctx = NULL;
    }
    host.plugin->name = xstrdup(def->name ? def->name : "");
    host.proxy.data = host.plugin;
    if (!host.plugin->cb_flush_ctx && !host.plugin->cb_flush) {
        die("%s exports neither FLBPluginFlushCtx nor FLBPluginFlush", path);
    }
    host.pre_run = (int (*)(int))sym("FLBPluginOutputPreRun");
    host.pre_exit = (void (*)(int))sym("FLBPluginOutputPreExit");
    say("symbols flush_ctx=%d flush=%d exit_ctx=%d exit=%d", host.plugin->cb_flush_ctx != NULL,
        host.plugin->cb_flush != NULL, host.plugin->cb_exit_ctx != NULL,
        host.plugin->cb_exit != NULL);
}

static struct instance *find(const char *name)
{
    int i;
    for (i = 0; i < host.ninstances; i++) {
        if (strcmp(host.instances[i].name, name) == 0) {
            return &host.instances[i];
        }
    }
    die("unknown instance %s", name);
}

static void unregister(void)
{
    void (*cb)(struct flb_plugin_proxy_def *) =
        (void (*)(struct flb_plugin_proxy_def *))sym("FLBPluginUnregister");
    if (cb) {
        cb(host.proxy.def);
    }
    host.unregistered = 1;
    say("unregister");
}

/* flb_proxy_output_cb_exit + proxy_go_output_destroy */
static void exit_instance(struct instance *in)
{
    double t0 = now_ms();
    int ret = 0;
    /* From here on nothing of this instance is flushed again (a background flush that gets
     * FLB_RETRY stops resending), as Fluent Bit stops its workers before the exit callback. */
    atomic_store(&in->exited, 1);
    if (host.pre_exit) {
        host.pre_exit(0);
    }
    if (host.plugin->cb_exit_ctx) {
        ret = host.plugin->cb_exit_ctx(in->remote_context);
    }
    else if (host.plugin->cb_exit) {
        ret = host.plugin->cb_exit();
    }
    if (in->context) {
        memset(in->context, 0xA5, sizeof(*in->context));
        free(in->context);
        in->context = NULL;
    }
    say("exit %s rc=%d ms=%.0f", in->name, ret, now_ms() - t0);
}

static void shutdown_all(void)
{
    int i;
    for (i = 0; i < host.ninstances; i++) {
        if (!atomic_load(&host.instances[i].exited)) {
            exit_instance(&host.instances[i]);
        }
    }
    if (!host.unregistered) {
        unregister();
    }
}

/* flb_output_new + flb_proxy_output_cb_init + proxy_go_output_init */
static void new_instance(const char *name, const char *props)
{
    struct instance *in;
    char *path;
    int ret, i;

    if (host.ninstances == MAX_INSTANCES) {
        die("too many instances");
    }
    in = &host.instances[host.ninstances++];
    memset(in, 0, sizeof(*in));
    snprintf(in->name, sizeof(in->name), "%s", name);
    path = resolve(props);
    load_props(in, path);
    free(path);
    in->context = calloc(1, sizeof(*in->context));
    if (!in->context) {
        die("out of memory");
    }
    in->context->proxy = &host.proxy;

    host.proxy.instance = in;
    host.plugin->api = host.proxy.api;
    host.plugin->o_ins = host.proxy.instance;
    host.plugin->context = in->context;

    atomic_store(&host.in_init, 1);
    ret = host.plugin->cb_init(host.plugin);
    atomic_store(&host.in_init, 0);
    in->remote_context = in->context->remote_context;
    say("init %s rc=%d", name, ret);

    if (ret <= 0) {
        /* "[go proxy]: plugin '%s' failed to initialize": Fluent Bit does not start and runs the
         * exit callbacks of every configured instance (flb_output_exit). */
        say("start refused: plugin '%s' failed to initialize", host.plugin->name);
        shutdown_all();
        say("done");
        exit(atomic_load(&host.violations) ? 3 : 2);
    }
    if (host.plugin->cb_flush_ctx && in->remote_context == NULL) {
        violation("FLBPluginInit of %s returned %d without setting a context", name, ret);
    }
    for (i = 0; i < host.ninstances - 1; i++) {
        if (host.instances[i].remote_context == in->remote_context && in->remote_context) {
            violation("instances %s and %s share a context", host.instances[i].name, name);
        }
    }
}

/* ------------------------------------------------------------------ flushes */

/* proxy_go_output_flush: fresh copies of the chunk and the tag, freed right after the call. */
static int flush_once(struct instance *in, const struct chunk *c, const char *tag)
{
    size_t tag_len = strlen(tag);
    unsigned char *data = xmalloc(c->size);
    char *buf = xmalloc(tag_len + 1);
    int ret;

    memcpy(data, c->data, c->size);
    memcpy(buf, tag, tag_len);
    buf[tag_len] = '\0';
    if (host.plugin->cb_flush_ctx) {
        /* ctx->remote_context: what FLBPluginSetContext stored in this instance's context */
        ret = host.plugin->cb_flush_ctx(in->remote_context, data, c->size, buf);
    }
    else {
        ret = host.plugin->cb_flush(data, c->size, buf);
    }
    if (c->size > 0 && memcmp(data, c->data, c->size) != 0) {
        violation("flush of %s on %s wrote into the chunk, which belongs to Fluent Bit", c->path,
                  in->name);
    }
    if (ret != FLB_OK && ret != FLB_RETRY && ret != FLB_ERROR) {
        violation("flush of %s on %s returned %d (Fluent Bit counts it as FLB_ERROR)", c->path,
                  in->name, ret);
    }
    memset(data, 0xA5, c->size);
    memset(buf, 0xA5, tag_len + 1);
    free(data);
    free(buf);
    return ret;
}

/* Fluent Bit retries an FLB_RETRY chunk later with the same bytes. */
static int flush_with_retries(struct instance *in, const struct chunk *c, const char *tag,
                              int *tries)
{
    int ret;
    for (*tries = 1;; (*tries)++) {
        ret = flush_once(in, c, tag);
        /* Fluent Bit flushes nothing of an instance after its exit callback: a background
         * flush still retrying when the script exits the instance stops here. */
        if (ret != FLB_RETRY || *tries > host.max_retries || atomic_load(&in->exited)) {
            return ret;
        }
        sleep_ms(host.retry_delay_ms);
    }
}

static void load_chunk(struct chunk *c, const char *path)
{
    c->path = resolve(path);
    c->data = read_all(c->path, &c->size);
}

static void free_chunk(struct chunk *c)
{
    free(c->path);
    free(c->data);
}

static void pre_run(void)
{
    if (!host.pre_run_done && host.pre_run) {
        host.pre_run(0);
    }
    host.pre_run_done = 1;
}

static void check_open(struct instance *in)
{
    if (atomic_load(&in->exited)) {
        die("instance %s has exited: Fluent Bit does not flush it any more", in->name);
    }
}

static void cmd_flush(const char *name, const char *chunk, const char *tag)
{
    struct instance *in = find(name);
    struct chunk c;
    double t0;
    int tries, ret;
    check_open(in);
    load_chunk(&c, chunk);
    pre_run();
    t0 = now_ms();
    ret = flush_with_retries(in, &c, tag, &tries);
    say("flush %s rc=%d tries=%d ms=%.0f", name, ret, tries, now_ms() - t0);
    free_chunk(&c);
}

/* One flushing thread of `concurrent` (in, tag, chunks) or `workers` (pool). */
struct worker {
    pthread_t thread;
    int index;
    struct instance *in;
    const char *tag;
    struct chunk *chunks;
    int nchunks;
    struct pool *pool;
    pthread_barrier_t *start;
    int counts[4]; /* error, ok, retry, other */
};

/* count_code counts a flush's final return code in counts. */
static void count_code(int counts[4], int ret)
{
    counts[ret >= FLB_ERROR && ret <= FLB_RETRY ? ret : 3]++;
}

/* run_workers starts n threads running fn on ws[i] together (one barrier), joins them and adds
 * their return-code counts to totals. */
static void run_workers(struct worker *ws, int n, void *(*fn)(void *), int totals[4])
{
    pthread_barrier_t start;
    int i, k;
    pre_run();
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (i = 0; i < n; i++) {
        ws[i].index = i;
        ws[i].start = &start;
        if (pthread_create(&ws[i].thread, NULL, fn, &ws[i]) != 0) {
            die("pthread_create failed");
        }
    }
    for (i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        for (k = 0; k < 4; k++) {
            totals[k] += ws[i].counts[k];
        }
    }
    pthread_barrier_destroy(&start);
}

static void *concurrent_worker(void *arg)
{
    struct worker *w = arg;
    int k;
    pthread_barrier_wait(w->start);
    for (k = 0; k < w->nchunks; k++) {
        struct chunk *c = &w->chunks[(w->index + k) % w->nchunks];
        int tries, ret = flush_with_retries(w->in, c, w->tag, &tries);
        count_code(w->counts, ret);
        say("cflush %s thread=%d chunk=%s rc=%d tries=%d", w->in->name, w->index, c->path, ret,
            tries);
    }
    return NULL;
}

static void cmd_concurrent(char **words, int nwords)
{
    struct instance *in;
    struct worker *workers;
    struct chunk *chunks;
    int threads, nchunks, i, totals[4] = {0};

    if (nwords < 5) {
        die("usage: concurrent NAME THREADS TAG CHUNK...");
    }
    in = find(words[1]);
    check_open(in);
    threads = atoi(words[2]);
    if (threads < 1 || threads > 256) {
        die("concurrent: THREADS must be 1..256");
    }
    nchunks = nwords - 4;
    chunks = calloc((size_t)nchunks, sizeof(*chunks));
    workers = calloc((size_t)threads, sizeof(*workers));
    if (!chunks || !workers) {
        die("out of memory");
    }
    for (i = 0; i < nchunks; i++) {
        load_chunk(&chunks[i], words[4 + i]);
    }
    for (i = 0; i < threads; i++) {
        workers[i] = (struct worker){.in = in, .tag = words[3], .chunks = chunks, .nchunks = nchunks};
    }
    run_workers(workers, threads, concurrent_worker, totals);
    say("concurrent %s flushes=%d ok=%d retry=%d error=%d other=%d", in->name, threads * nchunks,
        totals[FLB_OK], totals[FLB_RETRY], totals[FLB_ERROR], totals[3]);
    for (i = 0; i < nchunks; i++) {
        free_chunk(&chunks[i]);
    }
    free(chunks);
    free(workers);
}

/* workers: a queue of chunk paths shared by N threads, as Fluent Bit's output worker pool
 * hands each chunk to one worker. Chunks are read when taken, so a long list costs no memory. */
struct pool {
    struct instance *in;
    const char *tag;
    char **paths;
    int npaths;
    atomic_int next;
    atomic_int inflight;
    atomic_int max_inflight;
};

static void *pool_worker(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->pool;
    int i;
    pthread_barrier_wait(w->start);
    while ((i = atomic_fetch_add(&p->next, 1)) < p->npaths) {
        struct chunk c;
        int tries, ret, now, seen;
        load_chunk(&c, p->paths[i]);
        now = atomic_fetch_add(&p->inflight, 1) + 1;
        seen = atomic_load(&p->max_inflight);
        while (now > seen && !atomic_compare_exchange_weak(&p->max_inflight, &seen, now)) {
        }
        ret = flush_with_retries(p->in, &c, p->tag, &tries);
        atomic_fetch_sub(&p->inflight, 1);
        count_code(w->counts, ret);
        say("wflush %s thread=%d chunk=%s rc=%d tries=%d", p->in->name, w->index, c.path, ret,
            tries);
        free_chunk(&c);
    }
    return NULL;
}

static void cmd_workers(char **words, int nwords)
{
    struct pool p = {0};
    struct worker *ws;
    struct chunk list;
    char *line, *save = NULL;
    int n, i, totals[4] = {0};

    if (nwords != 5) {
        die("usage: workers NAME N TAG LIST");
    }
    p.in = find(words[1]);
    check_open(p.in);
    n = atoi(words[2]);
    if (n < 1 || n > 256) {
        die("workers: N must be 1..256");
    }
    p.tag = words[3];
    load_chunk(&list, words[4]);
    list.data = realloc(list.data, list.size + 1);
    if (!list.data) {
        die("out of memory");
    }
    list.data[list.size] = '\0';
    for (line = strtok_r((char *)list.data, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        if (*trim(line) == '\0') {
            continue;
        }
        p.paths = realloc(p.paths, sizeof(*p.paths) * (size_t)(p.npaths + 1));
        if (!p.paths) {
            die("out of memory");
        }
        p.paths[p.npaths++] = xstrdup(trim(line));
    }
    ws = calloc((size_t)n, sizeof(*ws));
    if (!ws) {
        die("out of memory");
    }
    for (i = 0; i < n; i++) {
        ws[i] = (struct worker){.pool = &p};
    }
    run_workers(ws, n, pool_worker, totals);
    say("workers %s flushes=%d ok=%d retry=%d error=%d other=%d max_inflight=%d", p.in->name,
        p.npaths, totals[FLB_OK], totals[FLB_RETRY], totals[FLB_ERROR], totals[3],
        atomic_load(&p.max_inflight));
    for (i = 0; i < p.npaths; i++) {
        free(p.paths[i]);
    }
    free(p.paths);
    free(ws);
    free_chunk(&list);
}

struct bg {
    struct instance *in;
    struct chunk chunk;
    char *tag;
};

static void *background_flush(void *arg)
{
    struct bg *b = arg;
    double t0 = now_ms();
    int tries, ret = flush_with_retries(b->in, &b->chunk, b->tag, &tries);
    say("bflush %s chunk=%s rc=%d tries=%d ms=%.0f", b->in->name, b->chunk.path, ret, tries,
        now_ms() - t0);
    free_chunk(&b->chunk);
    free(b->tag);
    free(b);
    return NULL;
}

static void cmd_background(const char *name, const char *chunk, const char *tag)
{
    struct bg *b = calloc(1, sizeof(*b));
    if (!b) {
        die("out of memory");
    }
    if (host.nbackground == MAX_BACKGROUND) {
        die("too many background flushes");
    }
    b->in = find(name);
    check_open(b->in);
    load_chunk(&b->chunk, chunk);
    b->tag = xstrdup(tag);
    pre_run();
    if (pthread_create(&host.background[host.nbackground++], NULL, background_flush, b) != 0) {
        die("pthread_create failed");
    }
}

static void cmd_wait(void)
{
    int i;
    for (i = 0; i < host.nbackground; i++) {
        pthread_join(host.background[i], NULL);
    }
    host.nbackground = 0;
}

/* ------------------------------------------------------------------ script */

static int split(char *line, char **words)
{
    int n = 0;
    char *save = NULL, *w;
    for (w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (w[0] == '#') {
            break;
        }
        if (n == MAX_WORDS) {
            die("line has more than %d words", MAX_WORDS);
        }
        words[n++] = w;
    }
    return n;
}

static void run(FILE *script)
{
    char line[8192];
    char *words[MAX_WORDS];
    int lineno = 0, n;

    while (fgets(line, sizeof(line), script)) {
        lineno++;
        n = split(line, words);
        if (n == 0) {
            continue;
        }
        if (strcmp(words[0], "instance") == 0 && n == 3) {
            new_instance(words[1], words[2]);
        }
        else if (strcmp(words[0], "flush") == 0 && n == 4) {
            cmd_flush(words[1], words[2], words[3]);
        }
        else if (strcmp(words[0], "concurrent") == 0) {
            cmd_concurrent(words, n);
        }
        else if (strcmp(words[0], "workers") == 0) {
            cmd_workers(words, n);
        }
        else if (strcmp(words[0], "background") == 0 && n == 4) {
            cmd_background(words[1], words[2], words[3]);
        }
        else if (strcmp(words[0], "wait") == 0 && n == 1) {
            cmd_wait();
        }
        else if (strcmp(words[0], "sleep") == 0 && n == 2) {
            sleep_ms(atol(words[1]));
        }
        else if (strcmp(words[0], "exit") == 0 && n == 2) {
            exit_instance(find(words[1]));
        }
        else if (strcmp(words[0], "unregister") == 0 && n == 1) {
            unregister();
        }
        else {
            die("script line %d: cannot parse \"%s\" with %d words", lineno, words[0], n);
        }
    }
}

static int parse_int(const char *flag, const char *v)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || n < 0 || n > INT_MAX) {
        die("%s: not a count: %s", flag, v);
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    FILE *script;
    char *slash;
    int i = 1;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--max-retries") == 0 && i + 1 < argc) {
            host.max_retries = parse_int(argv[i], argv[i + 1]);
            i++;
        }
        else if (strcmp(argv[i], "--no-ctx") == 0) {
            host.no_ctx = 1;
        }
        else if (strcmp(argv[i], "--retry-delay-ms") == 0 && i + 1 < argc) {
            host.retry_delay_ms = parse_int(argv[i], argv[i + 1]);
            i++;
        }
        else {
            die("unknown option %s", argv[i]);
        }
    }
    if (argc - i != 2) {
        fprintf(stderr,
                "usage: %s [--max-retries N] [--retry-delay-ms MS] [--no-ctx] PLUGIN.so SCRIPT\n",
                argv[0]);
        return 1;
    }
    script = fopen(argv[i + 1], "r");
    if (!script) {
        die("%s: %s", argv[i + 1], strerror(errno));
    }
    host.script_dir = xstrdup(argv[i + 1]);
    slash = strrchr((char *)host.script_dir, '/');
    if (slash) {
        *slash = '\0';
    }
    else {
        free((char *)host.script_dir);
        host.script_dir = NULL;
    }

    load(argv[i]);
    run(script);
    fclose(script);
    cmd_wait();
    shutdown_all();
    /* flb_plugin_proxy_destroy: free the def and dlclose. A Go .so is marked NODELETE, so the
     * dlclose leaves it mapped (its runtime's threads keep running until the process ends). */
    free(host.proxy.def);
    host.proxy.def = NULL;
    dlclose(host.dso);
    say("done");
    return atomic_load(&host.violations) ? 3 : 0;
}
