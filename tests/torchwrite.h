/* A minimal torch.save-compatible writer for tests: a zip with
 * <archive>/data.pkl (pickle protocol 2, as torch writes it), one storage per
 * tensor under <archive>/data/<n>, <archive>/version and optionally
 * <archive>/byteorder. */
#ifndef KT_TORCHWRITE_H
#define KT_TORCHWRITE_H

#include "core/tensor.h"

/* Pickle bytes built by hand, for the malformed-input tests. */
typedef struct kt_pk {
    unsigned char *p;
    size_t n, cap;
} kt_pk;
void kt_pk_put(kt_pk *b, const void *d, size_t n);
void kt_pk_op(kt_pk *b, unsigned char c);
void kt_pk_str(kt_pk *b, const char *s);                         /* BINUNICODE */
void kt_pk_global(kt_pk *b, const char *mod, const char *name); /* GLOBAL */
void kt_pk_int(kt_pk *b, int64_t v);                            /* BININT1 / BININT / LONG1 */

/* Official layout: tensors named "<component>.<key>" go to top-level dict
 * <component> (an OrderedDict) under "module.<key>". With components == 0,
 * the file holds the table's single tensor (as voices/<name>.pt). */
int kt_write_pth(const char *path, const kk_table *table, int components);

/* The same with the variations real files show. */
typedef struct kt_pth_opts {
    enum { KT_SINGLE, KT_FLAT, KT_OFFICIAL } layout; /* KT_FLAT: one dict, tensor names as keys */
    const char *byteorder; /* text of the "byteorder" record; NULL: none (as torch < 1.12) */
    int big_endian;        /* storages written with each element's bytes reversed */
    int parametrizations;  /* weight_g/v as "parametrizations.weight.original0/1" */
    const char *version;   /* text of the "version" record; NULL: "3\n" */
} kt_pth_opts;
int kt_write_pth_opts(const char *path, const kk_table *table, const kt_pth_opts *o);

#endif
