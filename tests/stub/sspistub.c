/*
 * sspistub.c - a stand-in for the Windows SSPI context export/import calls.
 *
 * Exports ExportSecurityContext, ImportSecurityContextW, DeleteSecurityContext,
 * FreeContextBuffer and CloseHandle with the same C ABI shape as sspi.h
 * (int32_t SECURITY_STATUS, uint32_t ULONG, uintptr_t ULONG_PTR, UTF-16
 * uint16_t strings), so tests and benchmarks go through real ctypes
 * marshalling.  Every call is counted, ownership of contexts, packed buffers
 * and tokens is tracked, and failures can be injected.  Control and
 * inspection functions are prefixed with stub_.
 *
 * All state is process-global (per loaded copy of the library) and guarded
 * by one mutex.
 *
 * Build (tests/stubs.py does this, or takes a prebuilt library named by the
 * SSPI_IMPORT_STUB_LIBRARY environment variable):
 *   Linux, macOS:  gcc -shared -fPIC -O2 -Wall -Werror -pthread -o libsspistub.so sspistub.c
 *   Windows x64:   x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -static-libgcc
 *                      -o sspistub.dll sspistub.c
 *   Windows x86:   i686-w64-mingw32-gcc ... -Wl,--kill-at (stdcall entry points
 *                      exported under their undecorated names, as secur32 does)
 * On Windows the lock is an SRWLOCK from kernel32, so the DLL needs no
 * libwinpthread-1.dll beside it and builds with any Windows C compiler.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#define STUB_EXPORT __declspec(dllexport)
#else
#define STUB_EXPORT __attribute__((visibility("default")))
#endif

/* sspi.h: SEC_ENTRY is __stdcall, which only means something on x86 (the
 * only Windows ABI where callee-pops differs).  The stub_* control
 * functions stay cdecl: tests/stubs.py loads them with ctypes.CDLL. */
#if defined(_WIN32) && (defined(__i386__) || defined(_M_IX86))
#define SEC_ENTRY __stdcall
#else
#define SEC_ENTRY
#endif

/* One process-wide lock.  windows.h is not included: it declares
 * kernel32's CloseHandle, which this stub defines for itself. */
#if defined(_WIN32)
typedef struct {
    void *Ptr;
} StubSrwLock;
__declspec(dllimport) void __stdcall AcquireSRWLockExclusive(StubSrwLock *lock);
__declspec(dllimport) void __stdcall ReleaseSRWLockExclusive(StubSrwLock *lock);
static StubSrwLock g_lock = {NULL}; /* SRWLOCK_INIT */
#define STUB_LOCK() AcquireSRWLockExclusive(&g_lock)
#define STUB_UNLOCK() ReleaseSRWLockExclusive(&g_lock)
#else
#include <pthread.h>
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
#define STUB_LOCK() pthread_mutex_lock(&g_lock)
#define STUB_UNLOCK() pthread_mutex_unlock(&g_lock)
#endif

typedef struct {
    uintptr_t dwLower;
    uintptr_t dwUpper;
} SecHandle;

typedef struct {
    uint32_t cbBuffer;
    uint32_t BufferType;
    void *pvBuffer;
} SecBuffer;

#define SEC_E_OK ((int32_t)0)
#define SEC_E_INSUFFICIENT_MEMORY ((int32_t)0x80090300u)
#define SEC_E_INVALID_HANDLE ((int32_t)0x80090301u)
#define SEC_E_SECPKG_NOT_FOUND ((int32_t)0x80090305u)
#define SEC_E_INVALID_TOKEN ((int32_t)0x80090308u)
#define SEC_E_INVALID_PARAMETER ((int32_t)0x8009035Du)

#define SECBUFFER_TOKEN 2u
#define SECPKG_CONTEXT_EXPORT_DELETE_OLD 0x2u
#define SECPKG_CONTEXT_EXPORT_TO_KERNEL 0x4u

#define STUB_HANDLE_UPPER ((uintptr_t)0x5EC5ECu)
#define STUB_PACKAGE_MAX 256
#define STUB_BLOB_HEAD_MAX 64

/* ------------------------------------------------------------------------ */
/* Open-addressing multiset of non-zero uintptr_t keys.                      */
/* Linear probing with backward-shift deletion (no tombstones), so a million */
/* insert/remove cycles never degrade the table.                             */
/* ------------------------------------------------------------------------ */

typedef struct {
    uintptr_t *keys;   /* 0 marks an empty slot */
    int64_t *counts;   /* multiplicity of keys[i] (>= 1 when occupied) */
    size_t cap;        /* power of two, or 0 before first use */
    unsigned bits;     /* log2(cap) */
    size_t used;       /* occupied slots */
    int64_t total;     /* sum of counts */
} KeySet;

#define KEYSET_MIN_BITS 6u

static size_t keyset_home(const KeySet *s, uintptr_t key)
{
    /* Fibonacci hashing: spreads sequential handle numbers and aligned
     * pointers across the table. */
    uint64_t h = (uint64_t)key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> (64u - s->bits));
}

static size_t keyset_find(const KeySet *s, uintptr_t key)
{
    size_t mask, i;
    if (s->cap == 0 || key == 0)
        return SIZE_MAX;
    mask = s->cap - 1;
    for (i = keyset_home(s, key);; i = (i + 1) & mask) {
        if (s->keys[i] == key)
            return i;
        if (s->keys[i] == 0)
            return SIZE_MAX;
    }
}

static int keyset_resize(KeySet *s, unsigned bits)
{
    size_t cap = (size_t)1 << bits, i, mask = cap - 1;
    uintptr_t *keys = calloc(cap, sizeof *keys);
    int64_t *counts = calloc(cap, sizeof *counts);
    KeySet fresh;
    if (keys == NULL || counts == NULL) {
        free(keys);
        free(counts);
        return -1;
    }
    fresh.keys = keys;
    fresh.counts = counts;
    fresh.cap = cap;
    fresh.bits = bits;
    fresh.used = s->used;
    fresh.total = s->total;
    for (i = 0; i < s->cap; i++) {
        size_t j;
        if (s->keys[i] == 0)
            continue;
        for (j = keyset_home(&fresh, s->keys[i]); keys[j] != 0; j = (j + 1) & mask)
            ;
        keys[j] = s->keys[i];
        counts[j] = s->counts[i];
    }
    free(s->keys);
    free(s->counts);
    *s = fresh;
    return 0;
}

/* Add one occurrence of key (non-zero).  Returns 0, or -1 on out of memory. */
static int keyset_add(KeySet *s, uintptr_t key)
{
    size_t mask, i;
    if ((s->used + 1) * 2 > s->cap) { /* keep load factor <= 1/2 */
        unsigned bits = s->cap == 0 ? KEYSET_MIN_BITS : s->bits + 1;
        if (keyset_resize(s, bits) != 0)
            return -1;
    }
    mask = s->cap - 1;
    for (i = keyset_home(s, key);; i = (i + 1) & mask) {
        if (s->keys[i] == key) {
            s->counts[i]++;
            s->total++;
            return 0;
        }
        if (s->keys[i] == 0) {
            s->keys[i] = key;
            s->counts[i] = 1;
            s->used++;
            s->total++;
            return 0;
        }
    }
}

/* Remove one occurrence of key.  Returns 1 if it was present, else 0. */
static int keyset_remove(KeySet *s, uintptr_t key)
{
    size_t mask, i, j;
    i = keyset_find(s, key);
    if (i == SIZE_MAX)
        return 0;
    s->total--;
    if (--s->counts[i] > 0)
        return 1;
    mask = s->cap - 1;
    j = i;
    for (;;) {
        size_t k;
        j = (j + 1) & mask;
        if (s->keys[j] == 0)
            break;
        k = keyset_home(s, s->keys[j]);
        /* Move keys[j] into the hole at i unless its home lies cyclically
         * in (i, j]. */
        if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        s->keys[i] = s->keys[j];
        s->counts[i] = s->counts[j];
        i = j;
    }
    s->keys[i] = 0;
    s->counts[i] = 0;
    s->used--;
    return 1;
}

static void keyset_clear(KeySet *s)
{
    free(s->keys);
    free(s->counts);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------ */
/* Global state                                                              */
/* ------------------------------------------------------------------------ */

enum {
    FN_EXPORT,
    FN_IMPORT,
    FN_DELETE,
    FN_FREE,
    FN_CLOSE,
    FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
    "ExportSecurityContext",
    "ImportSecurityContextW",
    "DeleteSecurityContext",
    "FreeContextBuffer",
    "CloseHandle",
};

static int64_t g_calls[FN_COUNT];
static int32_t g_fail_status[FN_COUNT];
static int64_t g_fail_times[FN_COUNT];

static KeySet g_contexts; /* dwLower of live handles */
static KeySet g_buffers;  /* outstanding packed buffers (malloc'd) */
static KeySet g_tokens;   /* outstanding export tokens (multiset) */
static uintptr_t g_next_handle = 1;
static int64_t g_bad_frees;
static int64_t g_bad_closes;

static uintptr_t g_export_token;
static uint8_t *g_export_payload; /* NULL: default payload */
static uint32_t g_export_payload_len;

static uint16_t g_last_package[STUB_PACKAGE_MAX];
static int32_t g_last_package_len;
static uint32_t g_last_blob_len;
static uintptr_t g_last_blob_ptr;
static uint8_t g_last_blob_head[STUB_BLOB_HEAD_MAX];
static int32_t g_last_blob_head_len;
static uintptr_t g_last_token;
static uint32_t g_last_flags;
static SecHandle g_last_handle;

static const char default_payload_tail[] = "stub-context";

static int fn_index(const char *name)
{
    int i;
    if (name == NULL)
        return -1;
    for (i = 0; i < FN_COUNT; i++)
        if (strcmp(name, fn_names[i]) == 0)
            return i;
    return -1;
}

/* Called with the lock held.  Counts the call; returns 1 and stores the
 * injected status if a failure is pending for fn. */
static int enter_call(int fn, int32_t *status)
{
    g_calls[fn]++;
    if (g_fail_times[fn] > 0) {
        g_fail_times[fn]--;
        *status = g_fail_status[fn];
        return 1;
    }
    return 0;
}

static int handle_is_live(const SecHandle *h)
{
    return h->dwUpper == STUB_HANDLE_UPPER && h->dwLower != 0 &&
           keyset_find(&g_contexts, h->dwLower) != SIZE_MAX;
}

/* Called with the lock held. */
static int issue_handle(SecHandle *out)
{
    uintptr_t lower = g_next_handle;
    if (keyset_add(&g_contexts, lower) != 0)
        return -1;
    g_next_handle++;
    out->dwLower = lower;
    out->dwUpper = STUB_HANDLE_UPPER;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* SSPI entry points                                                         */
/* ------------------------------------------------------------------------ */

STUB_EXPORT int32_t SEC_ENTRY ImportSecurityContextW(uint16_t *pszPackage,
                                                     SecBuffer *pPackedContext, void *Token,
                                                     SecHandle *phContext)
{
    int32_t status = SEC_E_OK;
    int32_t n = 0;
    STUB_LOCK();
    if (enter_call(FN_IMPORT, &status))
        goto out;

    if (pszPackage != NULL)
        while (n < STUB_PACKAGE_MAX && pszPackage[n] != 0) {
            g_last_package[n] = pszPackage[n];
            n++;
        }
    g_last_package_len = n;
    if (pPackedContext != NULL) {
        uint32_t len = pPackedContext->cbBuffer;
        g_last_blob_len = len;
        g_last_blob_ptr = (uintptr_t)pPackedContext->pvBuffer;
        g_last_blob_head_len = 0;
        if (pPackedContext->pvBuffer != NULL) {
            g_last_blob_head_len = (int32_t)(len < STUB_BLOB_HEAD_MAX ? len : STUB_BLOB_HEAD_MAX);
            memcpy(g_last_blob_head, pPackedContext->pvBuffer, (size_t)g_last_blob_head_len);
        }
    } else {
        g_last_blob_len = 0;
        g_last_blob_ptr = 0;
        g_last_blob_head_len = 0;
    }
    g_last_token = (uintptr_t)Token;

    if (pszPackage == NULL ||
        (n == 7 && pszPackage[7] == 0 && pszPackage[0] == 'U' && pszPackage[1] == 'n' &&
         pszPackage[2] == 'k' && pszPackage[3] == 'n' && pszPackage[4] == 'o' &&
         pszPackage[5] == 'w' && pszPackage[6] == 'n')) {
        status = SEC_E_SECPKG_NOT_FOUND;
    } else if (pPackedContext == NULL || pPackedContext->pvBuffer == NULL ||
               pPackedContext->cbBuffer == 0) {
        status = SEC_E_INVALID_TOKEN;
    } else if (phContext == NULL) {
        status = SEC_E_INVALID_PARAMETER;
    } else if (issue_handle(phContext) != 0) {
        status = SEC_E_INSUFFICIENT_MEMORY;
    }
out:
    STUB_UNLOCK();
    return status;
}

STUB_EXPORT int32_t SEC_ENTRY ExportSecurityContext(SecHandle *phContext, uint32_t fFlags,
                                                    SecBuffer *pPackedContext, void **pToken)
{
    int32_t status = SEC_E_OK;
    SecHandle src;
    uint8_t *buf;
    uint32_t len;
    STUB_LOCK();
    if (enter_call(FN_EXPORT, &status))
        goto out;

    g_last_flags = fFlags;
    if (phContext == NULL) {
        status = SEC_E_INVALID_HANDLE;
        goto out;
    }
    src = *phContext;
    g_last_handle = src;
    if (fFlags & SECPKG_CONTEXT_EXPORT_TO_KERNEL) {
        status = SEC_E_INVALID_PARAMETER;
        goto out;
    }
    if (!handle_is_live(&src)) {
        status = SEC_E_INVALID_HANDLE;
        goto out;
    }
    if (pPackedContext == NULL) {
        status = SEC_E_INVALID_PARAMETER;
        goto out;
    }

    if (g_export_payload != NULL) {
        len = g_export_payload_len;
        buf = malloc(len != 0 ? len : 1);
        if (buf != NULL && len != 0)
            memcpy(buf, g_export_payload, len);
    } else {
        len = (uint32_t)(sizeof src + sizeof default_payload_tail - 1);
        buf = malloc(len);
        if (buf != NULL) {
            memcpy(buf, &src, sizeof src);
            memcpy(buf + sizeof src, default_payload_tail, sizeof default_payload_tail - 1);
        }
    }
    if (buf == NULL) {
        status = SEC_E_INSUFFICIENT_MEMORY;
        goto out;
    }
    if (keyset_add(&g_buffers, (uintptr_t)buf) != 0) {
        free(buf);
        status = SEC_E_INSUFFICIENT_MEMORY;
        goto out;
    }
    if (pToken != NULL && g_export_token != 0) {
        if (keyset_add(&g_tokens, g_export_token) != 0) {
            keyset_remove(&g_buffers, (uintptr_t)buf);
            free(buf);
            status = SEC_E_INSUFFICIENT_MEMORY;
            goto out;
        }
    }

    pPackedContext->cbBuffer = len;
    pPackedContext->BufferType = SECBUFFER_TOKEN;
    pPackedContext->pvBuffer = buf;
    if (pToken != NULL)
        *pToken = (void *)g_export_token;
    if (fFlags & SECPKG_CONTEXT_EXPORT_DELETE_OLD)
        keyset_remove(&g_contexts, src.dwLower);
out:
    STUB_UNLOCK();
    return status;
}

STUB_EXPORT int32_t SEC_ENTRY DeleteSecurityContext(SecHandle *phContext)
{
    int32_t status = SEC_E_OK;
    STUB_LOCK();
    if (enter_call(FN_DELETE, &status))
        goto out;
    if (phContext == NULL) {
        status = SEC_E_INVALID_HANDLE;
        goto out;
    }
    g_last_handle = *phContext;
    if (handle_is_live(phContext))
        keyset_remove(&g_contexts, phContext->dwLower);
    else
        status = SEC_E_INVALID_HANDLE;
out:
    STUB_UNLOCK();
    return status;
}

STUB_EXPORT int32_t SEC_ENTRY FreeContextBuffer(void *pvContextBuffer)
{
    int32_t status = SEC_E_OK;
    STUB_LOCK();
    if (enter_call(FN_FREE, &status))
        goto out;
    if (keyset_remove(&g_buffers, (uintptr_t)pvContextBuffer)) {
        free(pvContextBuffer);
    } else {
        g_bad_frees++;
        status = SEC_E_INVALID_HANDLE;
    }
out:
    STUB_UNLOCK();
    return status;
}

STUB_EXPORT int32_t SEC_ENTRY CloseHandle(void *hObject)
{
    int32_t status = 1;
    STUB_LOCK();
    if (enter_call(FN_CLOSE, &status))
        goto out;
    if (!keyset_remove(&g_tokens, (uintptr_t)hObject)) {
        g_bad_closes++;
        status = 0;
    }
out:
    STUB_UNLOCK();
    return status;
}

/* ------------------------------------------------------------------------ */
/* Control and inspection                                                    */
/* ------------------------------------------------------------------------ */

STUB_EXPORT void stub_reset(void)
{
    size_t i;
    STUB_LOCK();
    for (i = 0; i < g_buffers.cap; i++)
        if (g_buffers.keys[i] != 0)
            free((void *)g_buffers.keys[i]);
    keyset_clear(&g_buffers);
    keyset_clear(&g_contexts);
    keyset_clear(&g_tokens);
    memset(g_calls, 0, sizeof g_calls);
    memset(g_fail_status, 0, sizeof g_fail_status);
    memset(g_fail_times, 0, sizeof g_fail_times);
    g_next_handle = 1;
    g_bad_frees = 0;
    g_bad_closes = 0;
    g_export_token = 0;
    free(g_export_payload);
    g_export_payload = NULL;
    g_export_payload_len = 0;
    g_last_package_len = 0;
    g_last_blob_len = 0;
    g_last_blob_ptr = 0;
    g_last_blob_head_len = 0;
    g_last_token = 0;
    g_last_flags = 0;
    memset(&g_last_handle, 0, sizeof g_last_handle);
    STUB_UNLOCK();
}

/* Make the next `times` calls of `function` return `status` with no other
 * effect.  times <= 0 cancels a pending injection.  Unknown names are
 * ignored. */
STUB_EXPORT void stub_fail(const char *function, int32_t status, int32_t times)
{
    int fn = fn_index(function);
    if (fn < 0)
        return;
    STUB_LOCK();
    g_fail_status[fn] = status;
    g_fail_times[fn] = times > 0 ? times : 0;
    STUB_UNLOCK();
}

/* Number of calls of `function` (injected failures included); -1 if the
 * name is unknown. */
STUB_EXPORT int64_t stub_calls(const char *function)
{
    int64_t n;
    int fn = fn_index(function);
    if (fn < 0)
        return -1;
    STUB_LOCK();
    n = g_calls[fn];
    STUB_UNLOCK();
    return n;
}

#define STUB_GETTER(type, name, expr)        \
    STUB_EXPORT type name(void)              \
    {                                        \
        type v;                              \
        STUB_LOCK();                         \
        v = (expr);                          \
        STUB_UNLOCK();                       \
        return v;                            \
    }

STUB_GETTER(int64_t, stub_live_contexts, g_contexts.total)
STUB_GETTER(int64_t, stub_live_buffers, g_buffers.total)
STUB_GETTER(int64_t, stub_live_tokens, g_tokens.total)
STUB_GETTER(int64_t, stub_bad_frees, g_bad_frees)
STUB_GETTER(int64_t, stub_bad_closes, g_bad_closes)
STUB_GETTER(uint32_t, stub_last_blob_len, g_last_blob_len)
STUB_GETTER(uintptr_t, stub_last_blob_ptr, g_last_blob_ptr)
STUB_GETTER(uintptr_t, stub_last_token, g_last_token)
STUB_GETTER(uint32_t, stub_last_flags, g_last_flags)

STUB_EXPORT void stub_set_export_token(uintptr_t token)
{
    STUB_LOCK();
    g_export_token = token;
    STUB_UNLOCK();
}

/* Use a copy of data[0:len] as the payload of later exports; data == NULL
 * restores the default payload (handle bytes + "stub-context"). */
STUB_EXPORT void stub_set_export_payload(const uint8_t *data, uint32_t len)
{
    uint8_t *copy = NULL;
    if (data != NULL) {
        copy = malloc(len != 0 ? len : 1);
        if (copy == NULL)
            return;
        if (len != 0)
            memcpy(copy, data, len);
    }
    STUB_LOCK();
    free(g_export_payload);
    g_export_payload = copy;
    g_export_payload_len = data != NULL ? len : 0;
    STUB_UNLOCK();
}

/* Copy up to `cap` UTF-16 units of the last imported package name into out;
 * returns the recorded length (at most 256). */
STUB_EXPORT int32_t stub_last_package(uint16_t *out, int32_t cap)
{
    int32_t n;
    STUB_LOCK();
    n = g_last_package_len;
    if (out != NULL && cap > 0)
        memcpy(out, g_last_package, sizeof(uint16_t) * (size_t)(cap < n ? cap : n));
    STUB_UNLOCK();
    return n;
}

/* Copy up to `cap` bytes of the recorded blob head (at most 64 bytes) into
 * out; returns the recorded head length. */
STUB_EXPORT int32_t stub_last_blob_head(uint8_t *out, int32_t cap)
{
    int32_t n;
    STUB_LOCK();
    n = g_last_blob_head_len;
    if (out != NULL && cap > 0)
        memcpy(out, g_last_blob_head, (size_t)(cap < n ? cap : n));
    STUB_UNLOCK();
    return n;
}

STUB_EXPORT void stub_last_handle(SecHandle *out)
{
    if (out == NULL)
        return;
    STUB_LOCK();
    *out = g_last_handle;
    STUB_UNLOCK();
}

/* Issue a live handle as if a handshake had established it.  On out of
 * memory *out is zeroed. */
STUB_EXPORT void stub_new_context(SecHandle *out)
{
    if (out == NULL)
        return;
    STUB_LOCK();
    if (issue_handle(out) != 0)
        memset(out, 0, sizeof *out);
    STUB_UNLOCK();
}
