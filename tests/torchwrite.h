/* A minimal torch.save-compatible writer for tests: a zip with
 * <archive>/data.pkl (pickle protocol 2, as torch writes it), one storage per
 * tensor under <archive>/data/<n> and <archive>/version. */
#ifndef KT_TORCHWRITE_H
#define KT_TORCHWRITE_H

#include "core/tensor.h"

/* Official layout: tensors named "<component>.<key>" go to top-level dict
 * <component> (an OrderedDict) under "module.<key>". With components == 0,
 * the file holds the table's single tensor (as voices/<name>.pt). */
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

int kt_write_pth(const char *path, const kk_table *table, int components);

#endif
