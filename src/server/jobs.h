/* The durable audiobook job queue: one SQLite file in WAL mode that any
 * number of server processes may share. A job is claimed in an IMMEDIATE
 * transaction and held by a lease that its owner's heartbeat extends; a job
 * whose lease ran out (its server died) is claimed again and continues from
 * its last finished chunk. */
#ifndef KK_SERVER_JOBS_H
#define KK_SERVER_JOBS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kokoro.h"

typedef struct kk_jobs kk_jobs;

/* States: queued, running, completed, failed, cancelled. */

kokoro_status kk_jobs_open(const char *path, kk_jobs **out);
void kk_jobs_close(kk_jobs *q);

typedef struct kk_job_new {
    const char *id;
    const char *input_path, *input_name;
    const char *options_json; /* voice, speed, lang_code, chapters, metadata */
    const char *output_path, *output_name;
    const char *work_dir;
    long total_chunks;
} kk_job_new;

kokoro_status kk_jobs_create(kk_jobs *q, const kk_job_new *job);

/* A claimed job: malloc'd strings, freed by kk_job_claimed_free. */
typedef struct kk_job_claimed {
    char *id, *input_path, *options_json, *output_path, *work_dir;
    long done_chunks, total_chunks;
} kk_job_claimed;
void kk_job_claimed_free(kk_job_claimed *j);

/* Claims the oldest queued job, or a running one whose lease expired.
 * Returns KOKORO_OK with *found = 0 when there is none. */
kokoro_status kk_jobs_claim(kk_jobs *q, const char *owner, double lease_s, kk_job_claimed *out, int *found);

/* Extends the leases of every running job `owner` holds. */
kokoro_status kk_jobs_heartbeat(kk_jobs *q, const char *owner, double lease_s);

/* Records a finished chunk. *still_ours = 0 when the job is no longer
 * running under this owner (cancelled, or reclaimed): the worker stops. */
kokoro_status kk_jobs_progress(kk_jobs *q, const char *id, const char *owner, long done, long total, int chapter,
                               const char *chapter_title, double chunk_wall_s, double audio_s, int *still_ours);

/* Ends a run: state completed/failed, or back to queued (server stopping). */
kokoro_status kk_jobs_finish(kk_jobs *q, const char *id, const char *owner, const char *state, const char *error);

/* 0 on success; 1 unknown job; 2 the job is not in a state that allows it. */
int kk_jobs_cancel(kk_jobs *q, const char *id);
int kk_jobs_resume(kk_jobs *q, const char *id);

kokoro_status kk_jobs_log(kk_jobs *q, const char *id, const char *msg);

/* JSON views for the REST API (NULL when unknown / on error). */
cJSON *kk_jobs_get_json(kk_jobs *q, const char *id, int with_log);
cJSON *kk_jobs_list_json(kk_jobs *q);
/* Output path, download name and state of a job (malloc'd), for downloads. */
kokoro_status kk_jobs_output(kk_jobs *q, const char *id, char **path, char **name, char **state);

#endif
