/* Shared by the document targets: open a file, read everything a caller
 * can ask of the document, and check what the API promises. */
#ifndef KK_FUZZ_DOC_COMMON_H
#define KK_FUZZ_DOC_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kokoro.h"

static const char *const fuzz_meta_keys[] = {"title", "creator", "language", "date", "publisher", "description",
                                             "identifier"};

static inline void fuzz_walk_document(kokoro_document *doc)
{
    size_t n = kokoro_document_chapter_count(doc);
    for (size_t i = 0; i < n; i++) {
        kokoro_chapter_info info;
        if (kokoro_document_chapter_info(doc, i, &info) != KOKORO_OK || !info.title || !info.matter_reason) abort();
        char *text = NULL;
        size_t len = 0;
        if (kokoro_document_chapter_text(doc, i, &text, &len) == KOKORO_OK) {
            if (!text || strlen(text) != len) abort(); /* NUL-terminated, no NUL inside */
            free(text);
        }
    }
    for (size_t k = 0; k < sizeof fuzz_meta_keys / sizeof fuzz_meta_keys[0]; k++) {
        size_t m = kokoro_document_meta_count(doc, fuzz_meta_keys[k]);
        for (size_t i = 0; i < m; i++)
            if (!kokoro_document_meta(doc, fuzz_meta_keys[k], i)) abort();
    }
    const unsigned char *cover;
    size_t cover_len;
    const char *mime;
    if (kokoro_document_cover(doc, &cover, &cover_len, &mime) == KOKORO_OK && cover && !cover_len) abort();
    for (size_t i = 0; kokoro_document_warning(doc, i); i++) {
    }
    char *listing = NULL;
    if (kokoro_document_format_listing(doc, 1.0f, &listing) == KOKORO_OK) free(listing);
}

/* Writes the input to a file of this process (ending in ext), opens it. */
static inline void fuzz_open_file(const unsigned char *data, size_t size, const char *ext)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/kokoro-fuzz-%ld%s", (long)getpid(), ext);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    kokoro_document *doc = NULL;
    if (kokoro_document_open(path, &doc) == KOKORO_OK) {
        fuzz_walk_document(doc);
        kokoro_document_free(doc);
    } else if (!kokoro_last_error()[0]) {
        abort(); /* a refusal always says why */
    }
    unlink(path);
}
#endif
