#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "core/memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

typedef struct memo_item {
    const void *key;
    int variant;
    size_t bytes;
    void *data;
} memo_item;

/* Entries live as long as the model: big ones are mapped on their own, so they never sit in the
 * middle of the heap the synthesis scratch is carved from (a 12 MB entry made during a call there
 * kept freed scratch from being reused, and the peak grew with every chapter of a book). */
#define MAPPED (1u << 20)

static void *entry_alloc(size_t bytes)
{
    if (bytes < MAPPED) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void entry_free(void *p, size_t bytes)
{
    if (!p) return;
    if (bytes < MAPPED) free(p);
    else munmap(p, bytes);
}

struct kk_memo {
    pthread_mutex_t lock;
    memo_item *items;
    size_t n, cap, bytes;
};

static int grow(kk_memo *memo)
{
    size_t cap = memo->cap ? 2 * memo->cap : 32;
    memo_item *items = realloc(memo->items, cap * sizeof *items);
    if (!items) return -1;
    memo->items = items;
    memo->cap = cap;
    return 0;
}

kk_memo *kk_memo_new(void)
{
    kk_memo *memo = calloc(1, sizeof *memo);
    if (memo && pthread_mutex_init(&memo->lock, NULL) != 0) {
        free(memo);
        return NULL;
    }
    return memo;
}

void kk_memo_free(kk_memo *memo)
{
    if (!memo) return;
    for (size_t i = 0; i < memo->n; i++) entry_free(memo->items[i].data, memo->items[i].bytes);
    free(memo->items);
    pthread_mutex_destroy(&memo->lock);
    free(memo);
}

const void *kk_memo_get(kk_memo *memo, const void *key, int variant, size_t bytes,
                        int (*fill)(void *dst, const void *arg), const void *arg)
{
    void *found = NULL;
    pthread_mutex_lock(&memo->lock);
    /* a few dozen entries a model: a linear search costs nothing next to their use */
    for (size_t i = 0; i < memo->n && !found; i++)
        if (memo->items[i].key == key && memo->items[i].variant == variant) found = memo->items[i].data;
    if (!found && (memo->n < memo->cap || grow(memo) == 0)) {
        void *data = entry_alloc(bytes);
        if (data && fill(data, arg) == 0) {
            memo->items[memo->n++] = (memo_item){.key = key, .variant = variant, .bytes = bytes, .data = data};
            memo->bytes += bytes;
            found = data;
        } else {
            entry_free(data, bytes);
        }
    }
    pthread_mutex_unlock(&memo->lock);
    return found;
}

size_t kk_memo_bytes(kk_memo *memo)
{
    pthread_mutex_lock(&memo->lock);
    size_t b = memo->bytes;
    pthread_mutex_unlock(&memo->lock);
    return b;
}
