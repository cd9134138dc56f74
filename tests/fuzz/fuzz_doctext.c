/* Plain text and Markdown documents from memory (kokoro_document_open_text):
 * chapter detection, every chapter's text, the listing. The first byte
 * picks Markdown or text. */
#include <stddef.h>
#include <stdint.h>

#include "doc_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    kokoro_document *doc = NULL;
    const char *name = data[0] & 1 ? "fuzz.md" : "fuzz.txt";
    if (kokoro_document_open_text((const char *)data + 1, size - 1, name, &doc) == KOKORO_OK) {
        /* a .md stays Markdown; a text with Markdown headings becomes Markdown */
        kokoro_document_type t = kokoro_document_get_type(doc);
        if (t != KOKORO_DOC_MARKDOWN && (data[0] & 1 || t != KOKORO_DOC_TEXT)) abort();
        if (kokoro_document_count_words(doc) == KOKORO_OK) fuzz_walk_document(doc);
        kokoro_document_free(doc);
    } else if (!kokoro_last_error()[0]) {
        abort();
    }
    return 0;
}
