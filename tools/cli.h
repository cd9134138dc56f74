/* Pieces of kokoro-tts that live in files of their own. */
#ifndef KK_CLI_H
#define KK_CLI_H

#if defined(__GNUC__)
#define KK_CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KK_CLI_PRINTF(a, b)
#endif

/* --download: fetches the official model and voices into the data folder
 * (resumable, with a progress bar, verified by loading). Returns the exit
 * status. KOKORO_DOWNLOAD_BASE replaces the sources' common prefix (tests
 * use a file:// folder). */
int kk_cli_download(int quiet);

/* --merge-chunks: each DIR/chapter_NNN/chunk_NNN.EXT (written by --split-output)
 * into DIR/Chapter_NNN_<title>.EXT, decoded with libsndfile. Returns the exit
 * status. When stop() (may be NULL) returns non-zero, the file being written
 * is abandoned (no temp file left) and 1 is returned. */
struct kokoro_writer_options;
int kk_cli_merge_chunks(const char *dir, const struct kokoro_writer_options *wo, int quiet, int (*stop)(void));

#endif
