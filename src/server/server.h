/* kokoro-server: the OpenAI-compatible speech API, the audiobook job queue
 * and the static web UI, on libmicrohttpd (one thread per connection, so a
 * slow client only ever holds its own thread) with a fixed pool of
 * synthesis workers. */
#ifndef KK_SERVER_SERVER_H
#define KK_SERVER_SERVER_H

#include <stddef.h>

#include "kokoro.h"
#include "server/backend.h"

typedef struct kk_server_config {
    const char *host;     /* "127.0.0.1" */
    int port;             /* 0: pick a free port (see kk_server_port) */
    const char *data_dir; /* queue.db, uploads/, work/, outputs/ */
    const char *web_dir;  /* static files; NULL: no web UI */
    const char *api_key;  /* NULL or "": no authentication */
    int workers;          /* synthesis workers for speech requests */
    int job_workers;      /* audiobook jobs run at once by this process */
    size_t max_body;      /* bytes of a JSON request body */
    size_t max_upload;    /* bytes of an uploaded file */
    size_t max_input;     /* code points of a speech input */
    int max_queue;        /* speech requests waiting for a worker before 503 */
    double lease_s;       /* job lease; a dead server's jobs are reclaimed after it */
    kk_backend_config backend;
} kk_server_config;

/* Defaults for everything but the backend paths. */
kk_server_config kk_server_config_default(void);

typedef struct kk_server kk_server;

/* Loads the backend, opens the queue, starts listening and the workers. */
kokoro_status kk_server_start(const kk_server_config *cfg, kk_server **out);
int kk_server_port(const kk_server *s);
/* Stops accepting, releases running jobs back to the queue, joins threads. */
void kk_server_stop(kk_server *s);

#endif
