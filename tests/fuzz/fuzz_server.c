/* kokoro-server's request bodies without a server: the speech request, the
 * job request (JSON, and the multipart form turned into it) and the output
 * file name made from a title. The first byte picks which. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server/request.h"

/* Form fields as "key=value" lines. */
static cJSON *form_fields(const char *p, size_t n)
{
    cJSON *f = cJSON_CreateObject();
    size_t i = 0;
    while (f && i < n) {
        size_t e = i;
        while (e < n && p[e] != '\n') e++;
        const char *eq = memchr(p + i, '=', e - i);
        if (eq) {
            char *k = strndup(p + i, (size_t)(eq - (p + i))), *v = strndup(eq + 1, (size_t)(p + e - eq - 1));
            if (k && v) cJSON_AddStringToObject(f, k, v);
            free(k);
            free(v);
        }
        i = e + 1;
    }
    return f;
}

static void check_job(const cJSON *o)
{
    static kk_job_fields jf;
    char err[512];
    if (kk_request_job(o, &jf, err, sizeof err) == 0) {
        if (!jf.file_id || !(jf.speed >= 0.5f && jf.speed <= 2.0f) || jf.nsel > KK_REQUEST_MAX_CHAPTERS) abort();
        for (size_t i = 0; i < jf.nsel; i++)
            if (jf.sel[i] < 0 || jf.sel[i] > 1000000) abort();
    } else if (!err[0]) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *s = strndup((const char *)data + 1, size - 1); /* bodies arrive NUL-terminated */
    if (!s) return 0;
    size_t n = size - 1;
    char err[512] = "";
    switch (data[0] % 4) {
    case 0: {
        kk_speech_fields f;
        int code = kk_request_speech((const char *)data + 1, n, 4096, &f, err, sizeof err);
        if (code == 0) {
            if (!f.input || !f.voice || !f.format || !(f.speed >= 0.5f && f.speed <= 2.0f)) abort();
            kk_speech_fields_free(&f);
        } else if ((code != 400 && code != 503) || !err[0]) {
            abort();
        }
        break;
    }
    case 1: {
        cJSON *o = cJSON_ParseWithLength((const char *)data + 1, n);
        check_job(o);
        cJSON_Delete(o);
        break;
    }
    case 2: {
        cJSON *fields = form_fields((const char *)data + 1, n);
        cJSON *o = kk_request_job_form(fields, "0123456789abcdef0123456789abcdef", err, sizeof err);
        if (o) check_job(o);
        else if (!err[0]) abort();
        cJSON_Delete(o);
        cJSON_Delete(fields);
        break;
    }
    default: {
        /* the output file's name: never a path, never hidden, never empty */
        char name[128];
        kk_request_safe_name(s, name, sizeof name);
        if (!name[0] || name[0] == '.' || strchr(name, '/') || strchr(name, '\\') || strlen(name) > 100) abort();
        break;
    }
    }
    free(s);
    return 0;
}
