/* PyTorch zip checkpoints: the zip layer is libzip; the pickle is run by a
 * small machine that knows the opcodes torch.save writes (protocol 2, plus
 * the few protocol-4 ones newer versions emit), resolves globals only from
 * an allow-list and builds tensors from the storages it names. */
#include "io/npz.h"
#include "io/torch.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "core/error.h"

#define PK_MAX_STACK 100000
#define PK_MAX_MEMO 1000000
#define PK_MAX_DEPTH 64
#define PK_MAX_KEY_COMPARES ((uint64_t)1 << 26) /* dict key lookups are linear: bound the quadratic case */
#define TORCH_MAX_PICKLE ((zip_uint64_t)64 << 20)
#define TORCH_MAX_STORAGE ((zip_uint64_t)4 << 30) /* per storage, uncompressed */
#define TORCH_MAX_RATIO 1000                      /* deflate never gets near this on weights: a bomb */
#define TORCH_MAX_VIEW ((uint64_t)64 << 20)       /* a view may outgrow its storage (stride 0) up to this */

typedef enum {
    PO_NONE,
    PO_BOOL,
    PO_INT,
    PO_FLOAT,
    PO_STR,
    PO_TUPLE,
    PO_LIST,
    PO_DICT,
    PO_GLOBAL,
    PO_STORAGE,
    PO_TENSOR,
    PO_MARK
} po_kind;

typedef struct pobj pobj;
struct pobj {
    po_kind kind;
    int64_t i;
    double f;
    char *s; /* string, global "module.name", storage key */
    pobj **items; /* tuple/list items; dict keys and values interleaved */
    size_t n, cap;
    kk_dtype dtype; /* storage, and global storage classes */
    int64_t numel;
    pobj *storage; /* tensor */
    int64_t offset;
    int ndim;
    int64_t shape[KK_MAX_DIMS], stride[KK_MAX_DIMS];
    pobj *next_alloc;
};

typedef struct vm {
    const unsigned char *p, *end, *start;
    const char *what;
    pobj *allocs;
    pobj **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t nmarks, marks_cap;
    pobj **memo;
    size_t memo_cap, memo_len; /* slots, and how many are filled (MEMOIZE's next index) */
    uint64_t compares;         /* dict key comparisons so far */
} vm;

static const struct {
    const char *name;
    kk_dtype dtype;
} storage_classes[] = {
    {"torch.FloatStorage", KK_F32}, {"torch.HalfStorage", KK_F16}, {"torch.BFloat16Storage", KK_BF16},
    {"torch.DoubleStorage", KK_F64}, {"torch.LongStorage", KK_I64}, {"torch.IntStorage", KK_I32},
    {"torch.ShortStorage", KK_I16}, {"torch.CharStorage", KK_I8}, {"torch.ByteStorage", KK_U8},
    {"torch.BoolStorage", KK_BOOL},
};
static const char *const allowed_calls[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                            "torch._utils._rebuild_parameter"};

static size_t off(const vm *v) { return (size_t)(v->p - v->start); }

static pobj *new_obj(vm *v, po_kind kind)
{
    pobj *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = kind;
    o->next_alloc = v->allocs;
    v->allocs = o;
    return o;
}

static void free_all(vm *v)
{
    for (pobj *o = v->allocs, *next; o; o = next) {
        next = o->next_alloc;
        free(o->s);
        free(o->items);
        free(o);
    }
    free(v->stack);
    free(v->marks);
    free(v->memo);
}

static kokoro_status perr(vm *v, size_t at, const char *fmt, const char *detail)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    return kk_error(KOKORO_ERR_FORMAT, "%s: pickle byte %zu: %s", v->what, at, msg);
}

static kokoro_status push(vm *v, pobj *o)
{
    if (!o) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", v->what);
    if (v->sp == v->stack_cap) {
        if (v->stack_cap >= PK_MAX_STACK) return perr(v, off(v), "stack deeper than the limit%s", NULL);
        size_t cap = v->stack_cap ? 2 * v->stack_cap : 64;
        pobj **s = realloc(v->stack, cap * sizeof *s);
        if (!s) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", v->what);
        v->stack = s;
        v->stack_cap = cap;
    }
    v->stack[v->sp++] = o;
    return KOKORO_OK;
}

/* As in Python's pickle, a MARK starts a new frame: nothing below the last
 * mark can be popped until TUPLE/LIST/SETITEMS/APPENDS consume the frame. */
static size_t frame(const vm *v) { return v->sp - (v->nmarks ? v->marks[v->nmarks - 1] : 0); }

static pobj *pop(vm *v) { return frame(v) ? v->stack[--v->sp] : NULL; }

static kokoro_status append_item(vm *v, pobj *c, pobj *item)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        pobj **it = realloc(c->items, cap * sizeof *it);
        if (!it) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", v->what);
        c->items = it;
        c->cap = cap;
    }
    c->items[c->n++] = item;
    return KOKORO_OK;
}

static int need(vm *v, size_t n) { return (size_t)(v->end - v->p) >= n; }

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

/* Items from the last MARK to the top of the stack, into a new container. */
static kokoro_status pop_to_mark(vm *v, size_t at, pobj *into)
{
    if (!v->nmarks) return perr(v, at, "no MARK before this opcode%s", NULL);
    size_t m = v->marks[--v->nmarks];
    for (size_t i = m; i < v->sp; i++) {
        kokoro_status st = append_item(v, into, v->stack[i]);
        if (st != KOKORO_OK) return st;
    }
    v->sp = m;
    return KOKORO_OK;
}

static kokoro_status set_items(vm *v, size_t at, pobj *dict, pobj **kv, size_t n)
{
    if (!dict || dict->kind != PO_DICT) return perr(v, at, "SETITEM(S) on something that is not a dict%s", NULL);
    if (n % 2) return perr(v, at, "SETITEMS with an odd number of items%s", NULL);
    for (size_t i = 0; i < n; i += 2) {
        /* a later value for an existing key replaces it */
        size_t j;
        v->compares += dict->n / 2;
        if (v->compares > PK_MAX_KEY_COMPARES)
            return perr(v, at, "dicts too large: more than %s key comparisons (a state dict has a few thousand keys)",
                        "2^26");
        for (j = 0; j < dict->n; j += 2)
            if (kv[i]->kind == PO_STR && dict->items[j]->kind == PO_STR && strcmp(dict->items[j]->s, kv[i]->s) == 0)
                break;
        if (j < dict->n) {
            dict->items[j + 1] = kv[i + 1];
            continue;
        }
        kokoro_status st = append_item(v, dict, kv[i]);
        if (st == KOKORO_OK) st = append_item(v, dict, kv[i + 1]);
        if (st != KOKORO_OK) return st;
    }
    return KOKORO_OK;
}

static kokoro_status int_tuple(vm *v, size_t at, const pobj *t, int64_t *out, int *n, const char *what)
{
    if (!t || t->kind != PO_TUPLE || t->n > KK_MAX_DIMS) return perr(v, at, "tensor %s is not a small tuple", what);
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PO_INT || t->items[i]->i < 0) return perr(v, at, "tensor %s holds a bad value", what);
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return KOKORO_OK;
}

static kokoro_status reduce(vm *v, size_t at)
{
    pobj *args = pop(v), *fn = pop(v);
    if (!args || !fn || args->kind != PO_TUPLE || fn->kind != PO_GLOBAL)
        return perr(v, at, "REDUCE needs a global and an argument tuple%s", NULL);
    if (strcmp(fn->s, "collections.OrderedDict") == 0) {
        if (args->n) return perr(v, at, "OrderedDict called with arguments%s", NULL);
        return push(v, new_obj(v, PO_DICT));
    }
    if (strcmp(fn->s, "torch._utils._rebuild_parameter") == 0) {
        if (args->n < 1 || args->items[0]->kind != PO_TENSOR)
            return perr(v, at, "_rebuild_parameter without a tensor%s", NULL);
        return push(v, args->items[0]);
    }
    if (strcmp(fn->s, "torch._utils._rebuild_tensor_v2") == 0) {
        if (args->n < 4 || args->items[0]->kind != PO_STORAGE || args->items[1]->kind != PO_INT)
            return perr(v, at, "_rebuild_tensor_v2 with unexpected arguments%s", NULL);
        pobj *t = new_obj(v, PO_TENSOR);
        if (!t) return push(v, NULL);
        t->storage = args->items[0];
        t->offset = args->items[1]->i;
        int ns, nt;
        kokoro_status st = int_tuple(v, at, args->items[2], t->shape, &ns, "size");
        if (st == KOKORO_OK) st = int_tuple(v, at, args->items[3], t->stride, &nt, "stride");
        if (st != KOKORO_OK) return st;
        if (ns != nt) return perr(v, at, "tensor size and stride differ in rank%s", NULL);
        if (t->offset < 0) return perr(v, at, "negative storage offset%s", NULL);
        t->ndim = ns;
        return push(v, t);
    }
    return perr(v, at, "call of '%s' refused", fn->s);
}

static kokoro_status run(vm *v, pobj **result)
{
    kokoro_status st = KOKORO_OK;
    while (st == KOKORO_OK) {
        if (!need(v, 1)) return perr(v, off(v), "data ends before STOP%s", NULL);
        size_t at = off(v);
        unsigned char op = *v->p++;
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(v, 1)) return perr(v, at, "truncated PROTO%s", NULL);
            if (*v->p > 5) return perr(v, at, "unsupported pickle protocol%s", NULL);
            v->p++;
            break;
        case 0x95: /* FRAME: a length hint */
            if (!need(v, 8)) return perr(v, at, "truncated FRAME%s", NULL);
            v->p += 8;
            break;
        case '}': st = push(v, new_obj(v, PO_DICT)); break;
        case ')': st = push(v, new_obj(v, PO_TUPLE)); break;
        case ']': st = push(v, new_obj(v, PO_LIST)); break;
        case 'N': st = push(v, new_obj(v, PO_NONE)); break;
        case 0x88: /* NEWTRUE */
        case 0x89: { /* NEWFALSE */
            pobj *o = new_obj(v, PO_BOOL);
            if (o) o->i = op == 0x88;
            st = push(v, o);
        } break;
        case '(':
            if (v->nmarks == v->marks_cap) {
                if (v->marks_cap >= PK_MAX_STACK) return perr(v, at, "too many MARKs%s", NULL);
                size_t cap = v->marks_cap ? 2 * v->marks_cap : 32;
                size_t *m = realloc(v->marks, cap * sizeof *m);
                if (!m) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", v->what);
                v->marks = m;
                v->marks_cap = cap;
            }
            v->marks[v->nmarks++] = v->sp;
            break;
        case 'J':
        case 'K':
        case 'M':
        case 0x8a: { /* BININT, BININT1, BININT2, LONG1 */
            int n = op == 'J' ? 4 : op == 'K' ? 1 : op == 'M' ? 2 : -1;
            if (n < 0) {
                if (!need(v, 1)) return perr(v, at, "truncated LONG1%s", NULL);
                n = *v->p++;
                if (n > 8) return perr(v, at, "LONG1 integer wider than 64 bits%s", NULL);
            }
            if (!need(v, (size_t)n)) return perr(v, at, "truncated integer%s", NULL);
            uint64_t x = rd_le(v->p, n);
            v->p += n;
            if ((op == 'J' || op == 0x8a) && n > 0 && n < 8 && (x >> (8 * n - 1)) & 1) x |= ~0ull << (8 * n);
            pobj *o = new_obj(v, PO_INT);
            if (o) o->i = (int64_t)x;
            st = push(v, o);
        } break;
        case 'G': { /* BINFLOAT, big-endian */
            if (!need(v, 8)) return perr(v, at, "truncated BINFLOAT%s", NULL);
            uint64_t x = 0;
            for (int i = 0; i < 8; i++) x = x << 8 | v->p[i];
            v->p += 8;
            pobj *o = new_obj(v, PO_FLOAT);
            if (o) memcpy(&o->f, &x, 8);
            st = push(v, o);
        } break;
        case 'X':
        case 0x8c: { /* BINUNICODE, SHORT_BINUNICODE */
            int n = op == 'X' ? 4 : 1;
            if (!need(v, (size_t)n)) return perr(v, at, "truncated string length%s", NULL);
            uint64_t len = rd_le(v->p, n);
            v->p += n;
            if (!need(v, len)) return perr(v, at, "string runs past the end of the pickle%s", NULL);
            pobj *o = new_obj(v, PO_STR);
            if (o && !(o->s = malloc(len + 1))) o = NULL;
            if (o) {
                memcpy(o->s, v->p, len);
                o->s[len] = '\0';
                if (strlen(o->s) != len) return perr(v, at, "string with a NUL byte%s", NULL);
            }
            v->p += len;
            st = push(v, o);
        } break;
        case 'c':
        case 0x93: { /* GLOBAL "module\nname\n", STACK_GLOBAL */
            char full[200];
            if (op == 'c') {
                const unsigned char *nl1 = memchr(v->p, '\n', (size_t)(v->end - v->p));
                const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(v->end - nl1 - 1)) : NULL;
                if (!nl2 || nl2 - v->p >= (ptrdiff_t)sizeof full) return perr(v, at, "malformed GLOBAL%s", NULL);
                snprintf(full, sizeof full, "%.*s.%.*s", (int)(nl1 - v->p), (const char *)v->p,
                         (int)(nl2 - nl1 - 1), (const char *)nl1 + 1);
                v->p = nl2 + 1;
            } else {
                pobj *name = pop(v), *mod = pop(v);
                if (!name || !mod || name->kind != PO_STR || mod->kind != PO_STR)
                    return perr(v, at, "STACK_GLOBAL needs two strings%s", NULL);
                snprintf(full, sizeof full, "%s.%s", mod->s, name->s);
            }
            int ok = 0;
            kk_dtype dt = KK_F32;
            for (size_t i = 0; i < sizeof storage_classes / sizeof *storage_classes; i++)
                if (strcmp(full, storage_classes[i].name) == 0) ok = 1, dt = storage_classes[i].dtype;
            for (size_t i = 0; i < sizeof allowed_calls / sizeof *allowed_calls; i++)
                if (strcmp(full, allowed_calls[i]) == 0) ok = 1;
            if (!ok) return perr(v, at, "global '%s' is not allowed (a checkpoint never runs code)", full);
            pobj *o = new_obj(v, PO_GLOBAL);
            if (o && !(o->s = strdup(full))) o = NULL;
            if (o) o->dtype = dt;
            st = push(v, o);
        } break;
        case 'R': st = reduce(v, at); break;
        case 'b': { /* BUILD: state of an OrderedDict (_metadata) or a tensor is not needed */
            pobj *state = pop(v);
            if (!state || !frame(v) || (v->stack[v->sp - 1]->kind != PO_DICT && v->stack[v->sp - 1]->kind != PO_TENSOR))
                return perr(v, at, "BUILD on an unsupported object%s", NULL);
        } break;
        case 'Q': { /* BINPERSID: ('storage', StorageClass, key, location, numel) */
            pobj *pid = pop(v);
            if (!pid || pid->kind != PO_TUPLE || pid->n < 5 || pid->items[0]->kind != PO_STR ||
                strcmp(pid->items[0]->s, "storage") != 0 || pid->items[1]->kind != PO_GLOBAL ||
                strncmp(pid->items[1]->s, "torch.", 6) != 0 || strstr(pid->items[1]->s, "Storage") == NULL ||
                pid->items[2]->kind != PO_STR || pid->items[4]->kind != PO_INT || pid->items[4]->i < 0)
                return perr(v, at, "persistent id is not a torch storage reference%s", NULL);
            pobj *o = new_obj(v, PO_STORAGE);
            if (o && !(o->s = strdup(pid->items[2]->s))) o = NULL;
            if (o) {
                o->dtype = pid->items[1]->dtype;
                o->numel = pid->items[4]->i;
            }
            st = push(v, o);
        } break;
        case 't':
        case 'l': { /* TUPLE, LIST */
            pobj *o = new_obj(v, op == 't' ? PO_TUPLE : PO_LIST);
            if (!o) return push(v, NULL);
            if ((st = pop_to_mark(v, at, o)) == KOKORO_OK) st = push(v, o);
        } break;
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            size_t n = (size_t)(op - 0x84);
            if (frame(v) < n) return perr(v, at, "stack underflow%s", NULL);
            pobj *o = new_obj(v, PO_TUPLE);
            if (!o) return push(v, NULL);
            for (size_t i = v->sp - n; i < v->sp && st == KOKORO_OK; i++) st = append_item(v, o, v->stack[i]);
            v->sp -= n;
            if (st == KOKORO_OK) st = push(v, o);
        } break;
        case 's': { /* SETITEM */
            if (frame(v) < 3) return perr(v, at, "stack underflow%s", NULL);
            st = set_items(v, at, v->stack[v->sp - 3], &v->stack[v->sp - 2], 2);
            v->sp -= 2;
        } break;
        case 'u': { /* SETITEMS */
            if (!v->nmarks) return perr(v, at, "no MARK before SETITEMS%s", NULL);
            size_t m = v->marks[--v->nmarks];
            if (m == 0) return perr(v, at, "SETITEMS without a dict%s", NULL);
            st = set_items(v, at, v->stack[m - 1], &v->stack[m], v->sp - m);
            v->sp = m;
        } break;
        case 'a': { /* APPEND */
            if (frame(v) < 2 || v->stack[v->sp - 2]->kind != PO_LIST) return perr(v, at, "APPEND without a list%s", NULL);
            st = append_item(v, v->stack[v->sp - 2], v->stack[v->sp - 1]);
            v->sp--;
        } break;
        case 'e': { /* APPENDS */
            if (!v->nmarks) return perr(v, at, "no MARK before APPENDS%s", NULL);
            size_t m = v->marks[--v->nmarks];
            if (m == 0 || v->stack[m - 1]->kind != PO_LIST) return perr(v, at, "APPENDS without a list%s", NULL);
            for (size_t i = m; i < v->sp && st == KOKORO_OK; i++) st = append_item(v, v->stack[m - 1], v->stack[i]);
            v->sp = m;
        } break;
        case 'q':
        case 'r':
        case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            size_t idx;
            if (op == 0x94) {
                idx = v->memo_len; /* MEMOIZE: the memo's current length */
            } else {
                int n = op == 'q' ? 1 : 4;
                if (!need(v, (size_t)n)) return perr(v, at, "truncated PUT%s", NULL);
                idx = (size_t)rd_le(v->p, n);
                v->p += n;
            }
            if (!frame(v)) return perr(v, at, "PUT on an empty stack%s", NULL);
            if (idx >= PK_MAX_MEMO) return perr(v, at, "memo index beyond the limit%s", NULL);
            if (idx >= v->memo_cap) {
                size_t cap = v->memo_cap ? v->memo_cap : 64;
                while (cap <= idx) cap *= 2;
                pobj **mm = realloc(v->memo, cap * sizeof *mm);
                if (!mm) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", v->what);
                memset(mm + v->memo_cap, 0, (cap - v->memo_cap) * sizeof *mm);
                v->memo = mm;
                v->memo_cap = cap;
            }
            if (!v->memo[idx]) v->memo_len++;
            v->memo[idx] = v->stack[v->sp - 1];
        } break;
        case 'h':
        case 'j': { /* BINGET, LONG_BINGET */
            int n = op == 'h' ? 1 : 4;
            if (!need(v, (size_t)n)) return perr(v, at, "truncated GET%s", NULL);
            size_t idx = (size_t)rd_le(v->p, n);
            v->p += n;
            if (idx >= v->memo_cap || !v->memo[idx]) return perr(v, at, "GET of an empty memo slot%s", NULL);
            st = push(v, v->memo[idx]);
        } break;
        case '.': /* STOP */
            if (v->sp != 1) return perr(v, at, "STOP with other than one object on the stack%s", NULL);
            *result = v->stack[0];
            return KOKORO_OK;
        default: {
            char d[32];
            snprintf(d, sizeof d, "0x%02x", op);
            return perr(v, at, "unsupported opcode %s", d);
        }
        }
    }
    return st;
}

/* ---- from pickle objects to the table ---- */

typedef struct flat {
    vm *v;
    kk_storage_fn storage;
    void *ctx;
    kk_table *table;
} flat;

static kokoro_status materialize(flat *f, const pobj *t, const char *name)
{
    const pobj *s = t->storage;
    size_t es = kk_dtype_size(s->dtype);
    const unsigned char *data;
    size_t size;
    kokoro_status st = f->storage(f->ctx, s->s, s->dtype, s->numel, &data, &size);
    if (st != KOKORO_OK) return st;
    if ((uint64_t)s->numel > size / es)
        return kk_error(KOKORO_ERR_FORMAT, "%s: tensor '%s': storage '%s' declares %lld elements but holds %zu bytes",
                        f->v->what, name, s->s, (long long)s->numel, size);
    /* every element the view can reach must lie inside the storage */
    uint64_t n = 1, last = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] && n > UINT64_MAX / (uint64_t)t->shape[d])
            return kk_error(KOKORO_ERR_FORMAT, "%s: tensor '%s': size overflows", f->v->what, name);
        n *= (uint64_t)t->shape[d];
        if (t->shape[d] > 0) {
            if (t->stride[d] && (uint64_t)(t->shape[d] - 1) > (UINT64_MAX - last) / (uint64_t)t->stride[d])
                return kk_error(KOKORO_ERR_FORMAT, "%s: tensor '%s': strides overflow", f->v->what, name);
            last += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d];
        }
    }
    if (n > 0 && last >= (uint64_t)s->numel)
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: tensor '%s': offset and strides reach element %llu of storage '%s', which has %lld",
                        f->v->what, name, (unsigned long long)last, s->s, (long long)s->numel);
    /* stride-0 views can name far more elements than the storage holds */
    if (n > SIZE_MAX / es || (n * es > size && n * es > TORCH_MAX_VIEW))
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: tensor '%s': %llu elements from a storage of %zu bytes (a view larger than 64 MiB "
                        "beyond its storage)",
                        f->v->what, name, (unsigned long long)n, size);
    unsigned char *out = malloc(n ? n * es : 1);
    if (!out) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory for tensor '%s'", f->v->what, name);
    int contiguous = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) contiguous = 0;
        expect *= t->shape[d];
    }
    if (n == 0) {
        /* an empty view reads nothing; its offset was never checked */
    } else if (contiguous) {
        memcpy(out, data + (size_t)t->offset * es, n * es);
    } else {
        int64_t idx[KK_MAX_DIMS] = {0};
        for (uint64_t i = 0; i < n; i++) {
            int64_t src = t->offset;
            for (int d = 0; d < t->ndim; d++) src += idx[d] * t->stride[d];
            memcpy(out + i * es, data + (size_t)src * es, es);
            for (int d = t->ndim - 1; d >= 0; d--) {
                if (++idx[d] < t->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    st = kk_table_add(f->table, name, s->dtype, t->ndim, t->shape, out);
    if (st != KOKORO_OK) kk_error_prefix("%s", f->v->what);
    return st;
}

static kokoro_status flatten(flat *f, const pobj *o, const char *prefix, int depth)
{
    if (depth > PK_MAX_DEPTH) return kk_error(KOKORO_ERR_FORMAT, "%s: dicts nested too deeply", f->v->what);
    if (o->kind == PO_TENSOR) return materialize(f, o, prefix);
    if (o->kind != PO_DICT) return KOKORO_OK; /* metadata (numbers, strings) carries no weights */
    for (size_t i = 0; i < o->n; i += 2) {
        const pobj *k = o->items[i], *val = o->items[i + 1];
        if (k->kind != PO_STR) {
            if (val->kind == PO_TENSOR || val->kind == PO_DICT)
                return kk_error(KOKORO_ERR_FORMAT, "%s: a dict key that is not a string", f->v->what);
            continue;
        }
        size_t len = strlen(prefix) + strlen(k->s) + 2;
        char *name = malloc(len);
        if (!name) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", f->v->what);
        snprintf(name, len, "%s%s%s", prefix, *prefix ? "." : "", k->s);
        kokoro_status st = flatten(f, val, name, depth + 1);
        free(name);
        if (st != KOKORO_OK) return st;
    }
    return KOKORO_OK;
}

kokoro_status kk_pickle_load(const unsigned char *pkl, size_t size, const char *what, kk_storage_fn storage,
                             void *ctx, kk_table *table)
{
    vm v = {.p = pkl, .end = pkl + size, .start = pkl, .what = what};
    kk_table_init(table);
    pobj *root = NULL;
    kokoro_status st = run(&v, &root);
    if (st == KOKORO_OK) {
        flat f = {&v, storage, ctx, table};
        st = flatten(&f, root, "", 0);
        if (st == KOKORO_OK && table->count == 0) st = kk_error(KOKORO_ERR_FORMAT, "%s: holds no tensor", what);
    }
    free_all(&v);
    if (st != KOKORO_OK) kk_table_free(table);
    return st;
}

/* ---- the zip container ---- */

typedef struct zctx {
    zip_t *z;
    const char *path;
    char prefix[256]; /* "<archive>/" */
    struct {
        char key[64];
        unsigned char *data;
        size_t size;
        size_t elem; /* element size the bytes were swapped for (0: not swapped) */
    } *cache;
    size_t ncache;
    zip_uint64_t file_size;
    int swap; /* the storages are in the other byte order than this host's */
} zctx;

/* Reverses the bytes of each es-byte element, in place. */
static void byteswap(unsigned char *p, size_t nbytes, size_t es)
{
    for (size_t i = 0; i + es <= nbytes; i += es)
        for (size_t a = i, b = i + es - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Zip bombs: an entry may not declare more than TORCH_MAX_STORAGE, nor more
 * than TORCH_MAX_RATIO times its compressed size or the whole archive. */
static int member_too_large(const zip_stat_t *zs, zip_uint64_t file_size)
{
    zip_uint64_t comp = (zs->valid & ZIP_STAT_COMP_SIZE) ? zs->comp_size : zs->size;
    return zs->size > TORCH_MAX_STORAGE || (file_size && zs->size / TORCH_MAX_RATIO > file_size) ||
           (comp && zs->size / comp > TORCH_MAX_RATIO) || (!comp && zs->size > 0);
}

static kokoro_status zip_storage(void *vctx, const char *key, kk_dtype dtype, int64_t numel,
                                 const unsigned char **data, size_t *size)
{
    zctx *c = vctx;
    size_t es = kk_dtype_size(dtype);
    for (size_t i = 0; i < c->ncache; i++)
        if (strcmp(c->cache[i].key, key) == 0) {
            /* swapped bytes are only right for the element size they were swapped as */
            if (c->cache[i].elem && c->cache[i].elem != es)
                return kk_error(KOKORO_ERR_FORMAT,
                                "%s: byte-swapped storage '%s' is referenced as %zu-byte and as %zu-byte elements",
                                c->path, key, c->cache[i].elem, es);
            *data = c->cache[i].data;
            *size = c->cache[i].size;
            return KOKORO_OK;
        }
    char name[400];
    if (strlen(key) >= sizeof c->cache[0].key || strchr(key, '/') || strstr(key, ".."))
        return kk_error(KOKORO_ERR_FORMAT, "%s: bad storage key '%s'", c->path, key);
    snprintf(name, sizeof name, "%sdata/%s", c->prefix, key);
    zip_stat_t zs;
    if (zip_stat(c->z, name, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
        return kk_error(KOKORO_ERR_FORMAT, "%s: storage '%s' is missing from the archive", c->path, name);
    /* checked before anything is allocated: the pickle's claim against the
     * entry, and the entry's claim against the archive */
    if ((uint64_t)numel > zs.size / es) {
        char declared[64];
        if ((uint64_t)numel <= UINT64_MAX / es)
            snprintf(declared, sizeof declared, "%llu", (unsigned long long)numel * es);
        else
            snprintf(declared, sizeof declared, "%lld elements", (long long)numel);
        return kk_error(KOKORO_ERR_FORMAT, "%s: storage '%s' holds %llu bytes, %s declared", c->path, name,
                        (unsigned long long)zs.size, declared);
    }
    if (member_too_large(&zs, c->file_size))
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: storage '%s' declares %llu bytes from %llu compressed in a %llu-byte file "
                        "(over 4 GiB or %d-fold: a zip bomb?)",
                        c->path, name, (unsigned long long)zs.size,
                        (unsigned long long)((zs.valid & ZIP_STAT_COMP_SIZE) ? zs.comp_size : zs.size),
                        (unsigned long long)c->file_size, TORCH_MAX_RATIO);
    unsigned char *buf = malloc(zs.size ? zs.size : 1);
    if (!buf) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory for storage '%s'", c->path, name);
    zip_file_t *zf = zip_fopen(c->z, name, 0);
    zip_int64_t got = zf ? zip_fread(zf, buf, zs.size) : -1;
    if (zf) zip_fclose(zf);
    if (got < 0 || (zip_uint64_t)got != zs.size) {
        free(buf);
        return kk_error(KOKORO_ERR_FORMAT, "%s: storage '%s' is truncated or corrupt", c->path, name);
    }
    void *grown = realloc(c->cache, (c->ncache + 1) * sizeof *c->cache);
    if (!grown) {
        free(buf);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", c->path);
    }
    c->cache = grown;
    if (c->swap && es > 1) byteswap(buf, zs.size, es);
    snprintf(c->cache[c->ncache].key, sizeof c->cache[0].key, "%s", key);
    c->cache[c->ncache].data = buf;
    c->cache[c->ncache].size = zs.size;
    c->cache[c->ncache].elem = c->swap ? es : 0;
    c->ncache++;
    *data = buf;
    *size = zs.size;
    return KOKORO_OK;
}

int kk_torch_probe(const char *path)
{
    int err, found = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &err);
    if (!z) return 0;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n && !found; i++) {
        const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
        size_t l = nm ? strlen(nm) : 0;
        found = l > 9 && strcmp(nm + l - 9, "/data.pkl") == 0;
    }
    zip_discard(z);
    return found;
}

/* A small text record "<archive>/<name>" into buf (NUL-terminated); *found
 * is 0 when the archive has none. Longer than size - 1 bytes is an error. */
static kokoro_status read_record(const zctx *c, const char *name, char *buf, size_t size, int *found)
{
    char full[400];
    snprintf(full, sizeof full, "%s%s", c->prefix, name);
    zip_stat_t zs;
    *found = zip_stat(c->z, full, 0, &zs) == 0;
    if (!*found) return KOKORO_OK;
    if (!(zs.valid & ZIP_STAT_SIZE) || zs.size >= size)
        return kk_error(KOKORO_ERR_FORMAT, "%s: record '%s' holds %llu bytes; expected at most %zu", c->path, full,
                        (unsigned long long)zs.size, size - 1);
    zip_file_t *zf = zip_fopen(c->z, full, 0);
    zip_int64_t got = zf ? zip_fread(zf, buf, zs.size) : -1;
    if (zf) zip_fclose(zf);
    if (got < 0 || (zip_uint64_t)got != zs.size)
        return kk_error(KOKORO_ERR_FORMAT, "%s: record '%s' is truncated or corrupt", c->path, full);
    buf[zs.size] = '\0';
    if (strlen(buf) != zs.size) return kk_error(KOKORO_ERR_FORMAT, "%s: record '%s' holds a NUL byte", c->path, full);
    return KOKORO_OK;
}

/* Printable form of a record's text for a message. */
static const char *printable(char *s)
{
    for (char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e) *p = '?';
    return s;
}

/* The optional records beside data.pkl. `version`: the container format
 * (torch.save writes 3; newer writers put it in .data/version); the state
 * dict inside has not changed shape across versions, so any number is read,
 * but text that is not one means a damaged or foreign file. `byteorder`:
 * absent in files from older torch (always little-endian then), else
 * "little" or "big" — the storages are in the saving host's byte order. */
static kokoro_status read_records(zctx *c)
{
    char buf[32];
    const char *vname = "version";
    int found;
    kokoro_status st = read_record(c, vname, buf, sizeof buf, &found);
    if (st == KOKORO_OK && !found) st = read_record(c, vname = ".data/version", buf, sizeof buf, &found);
    if (st != KOKORO_OK) return st;
    if (found) {
        size_t n = strlen(buf), digits = strspn(buf, "0123456789");
        if (n && buf[n - 1] == '\n') buf[--n] = '\0';
        if (digits == 0 || digits != n)
            return kk_error(KOKORO_ERR_FORMAT, "%s: record '%s%s' is '%s'; expected a format version number",
                            c->path, c->prefix, vname, printable(buf));
    }
    if ((st = read_record(c, "byteorder", buf, sizeof buf, &found)) != KOKORO_OK) return st;
    const uint16_t one = 1;
    int host_big = *(const unsigned char *)&one == 0;
    if (!found || strcmp(buf, "little") == 0) {
        c->swap = host_big;
    } else if (strcmp(buf, "big") == 0) {
        c->swap = !host_big;
    } else {
        return kk_error(KOKORO_ERR_FORMAT, "%s: record '%sbyteorder' is '%s'; expected 'little' or 'big'", c->path,
                        c->prefix, printable(buf));
    }
    return KOKORO_OK;
}

/* The checkpoint inside an opened archive; file_size bounds what a member may
 * declare. Always discards z. */
static kokoro_status read_zip(zip_t *z, zip_uint64_t file_size, const char *path, kk_table *table)
{
    zctx c = {.z = z, .path = path, .file_size = file_size};
    /* find "<archive>/data.pkl": the archive folder is whatever the saver chose */
    const char *pkl_name = NULL;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
        size_t l = nm ? strlen(nm) : 0;
        const char *slash = nm ? strchr(nm, '/') : NULL;
        if (l > 9 && strcmp(nm + l - 9, "/data.pkl") == 0 && slash == nm + l - 9) {
            pkl_name = nm;
            break;
        }
    }
    kokoro_status st = KOKORO_OK;
    unsigned char *pkl = NULL;
    zip_stat_t zs;
    if (!pkl_name) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: no '<archive>/data.pkl' entry: not a PyTorch checkpoint", path);
    } else if (strlen(pkl_name) - 8 >= sizeof c.prefix) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: archive name too long", path);
    } else if (zip_stat(z, pkl_name, 0, &zs) != 0 || zs.size > TORCH_MAX_PICKLE) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: data.pkl is unreadable or larger than 64 MiB", path);
    } else if (member_too_large(&zs, file_size)) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: data.pkl declares %llu bytes from %llu compressed (a zip bomb?)", path,
                      (unsigned long long)zs.size, (unsigned long long)zs.comp_size);
    } else {
        memcpy(c.prefix, pkl_name, strlen(pkl_name) - 8);
        c.prefix[strlen(pkl_name) - 8] = '\0';
        pkl = malloc(zs.size ? zs.size : 1);
        zip_file_t *zf = pkl ? zip_fopen(z, pkl_name, 0) : NULL;
        zip_int64_t got = zf ? zip_fread(zf, pkl, zs.size) : -1;
        if (zf) zip_fclose(zf);
        if (got < 0 || (zip_uint64_t)got != zs.size) st = kk_error(KOKORO_ERR_FORMAT, "%s: data.pkl is truncated", path);
        if (st == KOKORO_OK) st = read_records(&c);
    }
    if (st == KOKORO_OK) st = kk_pickle_load(pkl, zs.size, path, zip_storage, &c, table);
    free(pkl);
    for (size_t i = 0; i < c.ncache; i++) free(c.cache[i].data);
    free(c.cache);
    zip_discard(z);
    return st;
}

kokoro_status kk_torch_read(const char *path, kk_table *table)
{
    kk_table_init(table);
    int err;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        kokoro_status st = kk_error(err == ZIP_ER_NOENT || err == ZIP_ER_OPEN ? KOKORO_ERR_IO : KOKORO_ERR_FORMAT,
                                    "%s: not a readable PyTorch zip checkpoint: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_uint64_t file_size = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        fseek(fp, 0, SEEK_END);
        long sz = ftell(fp);
        file_size = sz > 0 ? (zip_uint64_t)sz : 0;
        fclose(fp);
    }
    return read_zip(z, file_size, path, table);
}

kokoro_status kk_torch_read_mem(const void *data, size_t size, const char *what, kk_table *table)
{
    kk_table_init(table);
    zip_t *z;
    kokoro_status st = kk_zip_open_buffer(data, size, what, "not a readable PyTorch zip checkpoint", &z);
    return st != KOKORO_OK ? st : read_zip(z, size, what, table); /* zip_discard also frees the source */
}
