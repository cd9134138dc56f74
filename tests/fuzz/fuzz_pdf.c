/* PDF through poppler-glib: open (outline, page scan, cover render), every
 * chapter's text, metadata. */
#include <stddef.h>
#include <stdint.h>

#include "doc_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_open_file(data, size, ".pdf");
    return 0;
}
