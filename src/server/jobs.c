/* SQLite job queue (see jobs.h). One connection per kk_jobs handle, used
 * under a mutex by the threads of one process; processes coordinate through
 * SQLite's own locking (WAL, busy timeout, IMMEDIATE claim transactions). */
#include "server/jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

struct kk_jobs {
    sqlite3 *db;
    pthread_mutex_t lock;
    char *path;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('queued','running','completed','failed','cancelled')),"
    " input_path TEXT NOT NULL, input_name TEXT NOT NULL, options TEXT NOT NULL,"
    " output_path TEXT NOT NULL, output_name TEXT NOT NULL, work_dir TEXT NOT NULL,"
    " total_chunks INTEGER NOT NULL, done_chunks INTEGER NOT NULL DEFAULT 0,"
    " audio_seconds REAL NOT NULL DEFAULT 0,"
    " work_seconds REAL NOT NULL DEFAULT 0, work_chunks INTEGER NOT NULL DEFAULT 0,"
    " chapter INTEGER, chapter_title TEXT, error TEXT,"
    " owner TEXT, lease_until REAL, started REAL, finished REAL);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created);"
    "CREATE TABLE IF NOT EXISTS job_log ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, t REAL NOT NULL, msg TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS job_log_job ON job_log(job_id, seq);";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static kokoro_status db_err(kk_jobs *q, const char *what)
{
    return kk_error(KOKORO_ERR_IO, "%s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
}

kokoro_status kk_jobs_open(const char *path, kk_jobs **out)
{
    kk_jobs *q = calloc(1, sizeof *q);
    if (!q) return kk_error(KOKORO_ERR_NOMEM, "jobs: out of memory");
    q->path = strdup(path);
    pthread_mutex_init(&q->lock, NULL);
    if (!q->path || sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                    NULL) != SQLITE_OK) {
        kokoro_status st = kk_error(KOKORO_ERR_IO, "%s: cannot open the job queue: %s", path,
                                    q->db ? sqlite3_errmsg(q->db) : "out of memory");
        kk_jobs_close(q);
        return st;
    }
    /* other processes may hold the write lock for a moment: wait, do not fail */
    sqlite3_busy_timeout(q->db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(q->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        kokoro_status st = kk_error(KOKORO_ERR_FORMAT, "%s: not a usable job queue: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        kk_jobs_close(q);
        return st;
    }
    *out = q;
    return KOKORO_OK;
}

void kk_jobs_close(kk_jobs *q)
{
    if (!q) return;
    if (q->db) sqlite3_close(q->db);
    pthread_mutex_destroy(&q->lock);
    free(q->path);
    free(q);
}

static void log_locked(kk_jobs *q, const char *id, const char *msg)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db, "INSERT INTO job_log(job_id,t,msg) VALUES(?,?,?)", -1, &s, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 2, now_s());
    sqlite3_bind_text(s, 3, msg, -1, SQLITE_TRANSIENT);
    sqlite3_step(s);
    sqlite3_finalize(s);
}

kokoro_status kk_jobs_log(kk_jobs *q, const char *id, const char *msg)
{
    pthread_mutex_lock(&q->lock);
    log_locked(q, id, msg);
    pthread_mutex_unlock(&q->lock);
    return KOKORO_OK;
}

kokoro_status kk_jobs_create(kk_jobs *q, const kk_job_new *j)
{
    kokoro_status st = KOKORO_OK;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    double t = now_s();
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO jobs(id,created,updated,state,input_path,input_name,options,output_path,"
                           "output_name,work_dir,total_chunks) VALUES(?,?,?,'queued',?,?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK) {
        st = db_err(q, "create job");
        goto out;
    }
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 2, t);
    sqlite3_bind_double(s, 3, t);
    sqlite3_bind_text(s, 4, j->input_path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, j->input_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, j->options_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 7, j->output_path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 8, j->output_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 9, j->work_dir, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 10, j->total_chunks);
    if (sqlite3_step(s) != SQLITE_DONE) st = db_err(q, "create job");
    sqlite3_finalize(s);
    if (st == KOKORO_OK) log_locked(q, j->id, "Job queued");
out:
    pthread_mutex_unlock(&q->lock);
    return st;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return strdup(t ? (const char *)t : "");
}

void kk_job_claimed_free(kk_job_claimed *j)
{
    free(j->id); free(j->input_path); free(j->options_json); free(j->output_path); free(j->work_dir);
    memset(j, 0, sizeof *j);
}

kokoro_status kk_jobs_claim(kk_jobs *q, const char *owner, double lease_s, kk_job_claimed *out, int *found)
{
    *found = 0;
    memset(out, 0, sizeof *out);
    kokoro_status st = KOKORO_OK;
    pthread_mutex_lock(&q->lock);
    /* IMMEDIATE takes the write lock first: two processes never claim one job */
    if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_err(q, "claim");
        goto out;
    }
    double t = now_s();
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT id,input_path,options,output_path,work_dir,done_chunks,total_chunks,state FROM jobs"
                           " WHERE state='queued' OR (state='running' AND lease_until < ?)"
                           " ORDER BY created, id LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK) {
        st = db_err(q, "claim");
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    sqlite3_bind_double(s, 1, t);
    int rc = sqlite3_step(s);
    int reclaimed = 0;
    if (rc == SQLITE_ROW) {
        out->id = col_dup(s, 0);
        out->input_path = col_dup(s, 1);
        out->options_json = col_dup(s, 2);
        out->output_path = col_dup(s, 3);
        out->work_dir = col_dup(s, 4);
        out->done_chunks = sqlite3_column_int64(s, 5);
        out->total_chunks = sqlite3_column_int64(s, 6);
        reclaimed = !strcmp((const char *)sqlite3_column_text(s, 7), "running");
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = db_err(q, "claim");
    }
    sqlite3_finalize(s);
    if (*found && st == KOKORO_OK) {
        sqlite3_stmt *u;
        if (sqlite3_prepare_v2(q->db,
                               "UPDATE jobs SET state='running', owner=?, lease_until=?, updated=?,"
                               " started=COALESCE(started, ?), error=NULL WHERE id=?",
                               -1, &u, NULL) != SQLITE_OK) {
            st = db_err(q, "claim");
        } else {
            sqlite3_bind_text(u, 1, owner, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(u, 2, t + lease_s);
            sqlite3_bind_double(u, 3, t);
            sqlite3_bind_double(u, 4, t);
            sqlite3_bind_text(u, 5, out->id, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(u) != SQLITE_DONE) st = db_err(q, "claim");
            sqlite3_finalize(u);
        }
        char msg[160];
        snprintf(msg, sizeof msg, "%s by %s at chunk %ld of %ld",
                 reclaimed ? "Reclaimed (lease expired)" : "Started", owner, out->done_chunks, out->total_chunks);
        if (st == KOKORO_OK) log_locked(q, out->id, msg);
    }
    if (st == KOKORO_OK && sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) st = db_err(q, "claim");
    if (st != KOKORO_OK) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        if (*found) kk_job_claimed_free(out);
        *found = 0;
    }
out:
    pthread_mutex_unlock(&q->lock);
    return st;
}

kokoro_status kk_jobs_heartbeat(kk_jobs *q, const char *owner, double lease_s)
{
    kokoro_status st = KOKORO_OK;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db, "UPDATE jobs SET lease_until=? WHERE state='running' AND owner=?", -1, &s, NULL) !=
        SQLITE_OK) {
        st = db_err(q, "heartbeat");
    } else {
        sqlite3_bind_double(s, 1, now_s() + lease_s);
        sqlite3_bind_text(s, 2, owner, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_DONE) st = db_err(q, "heartbeat");
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

kokoro_status kk_jobs_progress(kk_jobs *q, const char *id, const char *owner, long done, long total, int chapter,
                               const char *chapter_title, double chunk_wall_s, double audio_s, int *still_ours)
{
    kokoro_status st = KOKORO_OK;
    *still_ours = 0;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db,
                           "UPDATE jobs SET done_chunks=?, total_chunks=?, chapter=?, chapter_title=?,"
                           " work_seconds=work_seconds+?, work_chunks=work_chunks+1, audio_seconds=audio_seconds+?,"
                           " updated=? WHERE id=? AND state='running' AND owner=?",
                           -1, &s, NULL) != SQLITE_OK) {
        st = db_err(q, "progress");
    } else {
        sqlite3_bind_int64(s, 1, done);
        sqlite3_bind_int64(s, 2, total);
        sqlite3_bind_int(s, 3, chapter);
        sqlite3_bind_text(s, 4, chapter_title, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(s, 5, chunk_wall_s);
        sqlite3_bind_double(s, 6, audio_s);
        sqlite3_bind_double(s, 7, now_s());
        sqlite3_bind_text(s, 8, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 9, owner, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_DONE) st = db_err(q, "progress");
        else *still_ours = sqlite3_changes(q->db) == 1;
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

kokoro_status kk_jobs_finish(kk_jobs *q, const char *id, const char *owner, const char *state, const char *error)
{
    kokoro_status st = KOKORO_OK;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    int back = !strcmp(state, "queued");
    if (sqlite3_prepare_v2(q->db,
                           "UPDATE jobs SET state=?, error=?, owner=NULL, lease_until=NULL, updated=?,"
                           " finished=CASE WHEN ?='queued' THEN NULL ELSE ? END"
                           " WHERE id=? AND state='running' AND owner=?",
                           -1, &s, NULL) != SQLITE_OK) {
        st = db_err(q, "finish");
    } else {
        double t = now_s();
        sqlite3_bind_text(s, 1, state, -1, SQLITE_TRANSIENT);
        if (error) sqlite3_bind_text(s, 2, error, -1, SQLITE_TRANSIENT);
        else sqlite3_bind_null(s, 2);
        sqlite3_bind_double(s, 3, t);
        sqlite3_bind_text(s, 4, state, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(s, 5, t);
        sqlite3_bind_text(s, 6, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 7, owner, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_DONE) st = db_err(q, "finish");
        int changed = sqlite3_changes(q->db);
        sqlite3_finalize(s);
        if (st == KOKORO_OK && changed) {
            char msg[600];
            if (back) snprintf(msg, sizeof msg, "Released: server stopping; it continues from its last chunk");
            else if (error) snprintf(msg, sizeof msg, "Failed: %.500s", error);
            else snprintf(msg, sizeof msg, "Completed");
            log_locked(q, id, msg);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

/* Runs an UPDATE guarded by a state condition; 0 ok, 1 unknown, 2 refused. */
static int transition(kk_jobs *q, const char *id, const char *sql, const char *msg)
{
    int r = 2;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_double(s, 1, now_s());
        sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(q->db) == 1) r = 0;
        sqlite3_finalize(s);
    }
    if (r == 0) {
        log_locked(q, id, msg);
    } else if (sqlite3_prepare_v2(q->db, "SELECT 1 FROM jobs WHERE id=?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_ROW) r = 1;
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

int kk_jobs_cancel(kk_jobs *q, const char *id)
{
    /* the running worker sees the state change at its next chunk and stops */
    return transition(q, id,
                      "UPDATE jobs SET state='cancelled', owner=NULL, lease_until=NULL, updated=?"
                      " WHERE id=? AND state IN ('queued','running')",
                      "Cancelled by user");
}

int kk_jobs_resume(kk_jobs *q, const char *id)
{
    return transition(q, id,
                      "UPDATE jobs SET state='queued', error=NULL, finished=NULL, updated=?"
                      " WHERE id=? AND state IN ('cancelled','failed')",
                      "Resumed: continues from its last finished chunk");
}

static void add_str(cJSON *o, const char *k, sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL) cJSON_AddNullToObject(o, k);
    else cJSON_AddStringToObject(o, k, (const char *)sqlite3_column_text(s, i));
}

#define JOB_COLS                                                                                                  \
    "id,created,updated,state,input_name,options,output_name,total_chunks,done_chunks,audio_seconds,"              \
    "work_seconds,work_chunks,chapter,chapter_title,error,started,finished"

static cJSON *row_json(sqlite3_stmt *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_str(o, "id", s, 0);
    cJSON_AddNumberToObject(o, "created", sqlite3_column_double(s, 1));
    cJSON_AddNumberToObject(o, "updated", sqlite3_column_double(s, 2));
    const char *state = (const char *)sqlite3_column_text(s, 3);
    add_str(o, "state", s, 3);
    add_str(o, "input_name", s, 4);
    cJSON *opts = cJSON_Parse((const char *)sqlite3_column_text(s, 5));
    if (opts) cJSON_AddItemToObject(o, "options", opts);
    add_str(o, "output_name", s, 6);
    long total = (long)sqlite3_column_int64(s, 7), done = (long)sqlite3_column_int64(s, 8);
    cJSON_AddNumberToObject(o, "total_chunks", (double)total);
    cJSON_AddNumberToObject(o, "done_chunks", (double)done);
    cJSON_AddNumberToObject(o, "percent", total > 0 ? 100.0 * (double)done / (double)total : 0.0);
    cJSON_AddNumberToObject(o, "audio_seconds", sqlite3_column_double(s, 9));
    double ws = sqlite3_column_double(s, 10);
    long wc = (long)sqlite3_column_int64(s, 11);
    /* ETA from the measured time per chunk of this job, once there is one */
    if (wc > 0 && done < total && (!strcmp(state, "running") || !strcmp(state, "queued")))
        cJSON_AddNumberToObject(o, "eta_seconds", ws / (double)wc * (double)(total - done));
    else
        cJSON_AddNullToObject(o, "eta_seconds");
    if (sqlite3_column_type(s, 12) == SQLITE_NULL) cJSON_AddNullToObject(o, "current_chapter");
    else cJSON_AddNumberToObject(o, "current_chapter", sqlite3_column_int(s, 12));
    add_str(o, "current_chapter_title", s, 13);
    add_str(o, "error", s, 14);
    if (sqlite3_column_type(s, 15) == SQLITE_NULL) cJSON_AddNullToObject(o, "started");
    else cJSON_AddNumberToObject(o, "started", sqlite3_column_double(s, 15));
    if (sqlite3_column_type(s, 16) == SQLITE_NULL) cJSON_AddNullToObject(o, "finished");
    else cJSON_AddNumberToObject(o, "finished", sqlite3_column_double(s, 16));
    return o;
}

cJSON *kk_jobs_get_json(kk_jobs *q, const char *id, int with_log)
{
    cJSON *o = NULL;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db, "SELECT " JOB_COLS " FROM jobs WHERE id=?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW) o = row_json(s);
        sqlite3_finalize(s);
    }
    if (o && with_log) {
        cJSON *log = cJSON_AddArrayToObject(o, "log");
        if (log && sqlite3_prepare_v2(q->db, "SELECT t,msg FROM job_log WHERE job_id=? ORDER BY seq", -1, &s, NULL) ==
                       SQLITE_OK) {
            sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
            while (sqlite3_step(s) == SQLITE_ROW) {
                cJSON *e = cJSON_CreateObject();
                if (!e) break;
                cJSON_AddNumberToObject(e, "time", sqlite3_column_double(s, 0));
                add_str(e, "message", s, 1);
                cJSON_AddItemToArray(log, e);
            }
            sqlite3_finalize(s);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return o;
}

cJSON *kk_jobs_list_json(kk_jobs *q)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db, "SELECT " JOB_COLS " FROM jobs ORDER BY created DESC, id LIMIT 200", -1, &s,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            cJSON *o = row_json(s);
            if (o) cJSON_AddItemToArray(arr, o);
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&q->lock);
    return arr;
}

kokoro_status kk_jobs_output(kk_jobs *q, const char *id, char **path, char **name, char **state)
{
    kokoro_status st = kk_error(KOKORO_ERR_INVALID_ARG, "job %s: no such job", id);
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(q->db, "SELECT output_path,output_name,state FROM jobs WHERE id=?", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *path = col_dup(s, 0);
            *name = col_dup(s, 1);
            *state = col_dup(s, 2);
            st = KOKORO_OK;
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}
