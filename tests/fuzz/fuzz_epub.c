/* EPUB: container, OPF, nav, NCX, XHTML to text, cover, through
 * kokoro_document_open and every chapter's text.
 * An input starting with "PK" is the .epub itself. Any other input is split
 * at NUL bytes into the members of a book that libzip then writes (stored, so
 * the CRCs are right and mutations reach the XML parsers rather than stop at
 * the zip checks): container.xml, package.opf, nav.xhtml, toc.ncx, c1.xhtml,
 * c2.xhtml, cover.png, with the mimetype first. */
#include <stddef.h>
#include <stdint.h>

#include <zip.h>

#include "doc_common.h"

static const char *const members[] = {"META-INF/container.xml", "EPUB/package.opf", "EPUB/nav.xhtml",
                                      "EPUB/toc.ncx",           "EPUB/c1.xhtml",    "EPUB/c2.xhtml",
                                      "EPUB/cover.png"};
#define N_MEMBERS (sizeof members / sizeof members[0])

static int add(zip_t *z, const char *name, const void *p, size_t n)
{
    zip_source_t *src = zip_source_buffer(z, p, n, 0);
    if (!src) return -1;
    zip_int64_t i = zip_file_add(z, name, src, ZIP_FL_OVERWRITE);
    if (i < 0) { zip_source_free(src); return -1; }
    return zip_set_file_compression(z, (zip_uint64_t)i, ZIP_CM_STORE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
        fuzz_open_file(data, size, ".epub");
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/kokoro-fuzz-%ld.epub", (long)getpid());
    int zerr;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!z) abort();
    static const char mt[] = "application/epub+zip";
    if (add(z, "mimetype", mt, sizeof mt - 1) != 0) abort();
    size_t start = 0;
    for (size_t m = 0; m < N_MEMBERS && start <= size; m++) {
        const uint8_t *nul = memchr(data + start, 0, size - start);
        size_t end = nul ? (size_t)(nul - data) : size;
        if (add(z, members[m], data + start, end - start) != 0) abort();
        start = end + 1;
    }
    if (zip_close(z) != 0) abort(); /* the buffers are read here */
    kokoro_document *doc = NULL;
    if (kokoro_document_open(path, &doc) == KOKORO_OK) {
        fuzz_walk_document(doc);
        kokoro_document_free(doc);
    } else if (!kokoro_last_error()[0]) {
        abort();
    }
    unlink(path);
    return 0;
}
