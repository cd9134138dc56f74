/* Request bodies of kokoro-server (see request.h). */
#include "server/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const MODELS[] = {"kokoro", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

/* OpenAI voice names Kokoro-FastAPI maps onto Kokoro voices. */
static const char *voice_alias(const char *v)
{
    static const char *const map[][2] = {
        {"alloy", "am_adam"}, {"echo", "af_bella"}, {"nova", "bf_isabella"}, {"shimmer", "af_sky"}};
    if (!v) return v;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(v, map[i][0])) return map[i][1];
    return v;
}

static size_t utf8_count(const char *p)
{
    size_t n = 0;
    for (; *p; p++) n += ((unsigned char)*p & 0xC0) != 0x80;
    return n;
}

static const char *json_str(const cJSON *o, const char *k, const char *def, int *bad)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsString(v)) { *bad = 1; return def; }
    return v->valuestring;
}

void kk_speech_fields_free(kk_speech_fields *f)
{
    free(f->input);
    free(f->voice);
    free(f->format);
    free(f->lang);
    memset(f, 0, sizeof *f);
}

int kk_request_speech(const char *body, size_t len, size_t max_input, kk_speech_fields *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
    int code = 400;
    if (!o || !cJSON_IsObject(o)) {
        snprintf(err, cap, "request body: a JSON object expected");
        goto out;
    }
    int bad = 0;
    const char *model = json_str(o, "model", "kokoro", &bad);
    if (bad) { snprintf(err, cap, "model: a string expected"); goto out; }
    size_t m = 0;
    while (m < N_MODELS && strcmp(model, MODELS[m])) m++;
    if (m == N_MODELS) {
        snprintf(err, cap, "model '%.100s': expected kokoro, tts-1, tts-1-hd or gpt-4o-mini-tts", model);
        goto out;
    }
    cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
    if (!cJSON_IsString(in)) { snprintf(err, cap, "input: a string is required"); goto out; }
    size_t chars = utf8_count(in->valuestring);
    if (chars > max_input) {
        snprintf(err, cap, "input: %zu characters, the limit is %zu", chars, max_input);
        goto out;
    }
    const char *voice = voice_alias(json_str(o, "voice", "af_heart", &bad));
    const char *format = json_str(o, "response_format", "mp3", &bad);
    const char *lang = json_str(o, "lang_code", NULL, &bad);
    cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "speed"), *stv = cJSON_GetObjectItemCaseSensitive(o, "stream");
    if (bad || (sp && !cJSON_IsNumber(sp)) || (stv && !cJSON_IsBool(stv))) {
        snprintf(err, cap, "voice, response_format and lang_code are strings, speed a number, stream a boolean");
        goto out;
    }
    /* checked as a double: a float cast of 1e300 would be undefined */
    double speed = sp ? sp->valuedouble : 1.0;
    if (!(speed >= 0.5 && speed <= 2.0)) {
        snprintf(err, cap, "speed %g: this engine supports 0.5 to 2.0", speed);
        goto out;
    }
    out->speed = (float)speed;
    out->stream = stv ? cJSON_IsTrue(stv) : 1;
    out->input = strdup(in->valuestring);
    out->voice = strdup(voice);
    out->format = strdup(format);
    out->lang = lang && *lang ? strdup(lang) : NULL;
    if (!out->input || !out->voice || !out->format || (lang && *lang && !out->lang)) {
        code = 503;
        snprintf(err, cap, "out of memory");
        goto out;
    }
    code = 0;
out:
    if (code) kk_speech_fields_free(out);
    cJSON_Delete(o);
    return code;
}

int kk_request_job(const cJSON *o, kk_job_fields *out, char *err, size_t cap)
{
    out->nsel = 0;
    if (!cJSON_IsObject(o)) {
        snprintf(err, cap, "request body: a JSON object expected");
        return 400;
    }
    int bad = 0;
    out->file_id = json_str(o, "file_id", NULL, &bad);
    out->voice = voice_alias(json_str(o, "voice", "af_heart", &bad));
    out->lang = json_str(o, "lang_code", NULL, &bad);
    out->title = json_str(o, "title", NULL, &bad);
    out->author = json_str(o, "author", NULL, &bad);
    out->cover = json_str(o, "cover_file_id", NULL, &bad);
    cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "speed"), *chs = cJSON_GetObjectItemCaseSensitive(o, "chapters");
    if (bad || !out->file_id || (sp && !cJSON_IsNumber(sp)) || (chs && !cJSON_IsNull(chs) && !cJSON_IsArray(chs))) {
        snprintf(err, cap,
                 "file_id (string) is required; voice, lang_code, title, author, cover_file_id are strings, "
                 "speed a number, chapters an array of chapter indices");
        return 400;
    }
    /* checked as a double: a float cast of 1e300 would be undefined */
    double speed = sp ? sp->valuedouble : 1.0;
    if (!(speed >= 0.5 && speed <= 2.0)) {
        snprintf(err, cap, "speed %g: this engine supports 0.5 to 2.0", speed);
        return 400;
    }
    out->speed = (float)speed;
    if (cJSON_IsArray(chs)) {
        cJSON *e;
        cJSON_ArrayForEach(e, chs) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 1e6) ||
                out->nsel == KK_REQUEST_MAX_CHAPTERS || e->valuedouble != (double)(int)e->valuedouble) {
                snprintf(err, cap, "chapters: chapter indices (integers >= 0) expected");
                return 400;
            }
            out->sel[out->nsel++] = (int)e->valuedouble;
        }
        if (!out->nsel) { snprintf(err, cap, "chapters: empty selection"); return 400; }
    }
    return 0;
}

cJSON *kk_request_job_form(const cJSON *fields, const char *file_id, char *err, size_t cap)
{
    cJSON *o = cJSON_CreateObject(), *e;
    if (!o || !cJSON_AddStringToObject(o, "file_id", file_id)) goto oom;
    cJSON_ArrayForEach(e, fields) {
        if (!e->string || !cJSON_IsString(e)) continue;
        if (!strcmp(e->string, "speed")) {
            char *end;
            double v = strtod(e->valuestring, &end);
            if (end == e->valuestring || *end) {
                snprintf(err, cap, "speed: a number expected");
                cJSON_Delete(o);
                return NULL;
            }
            if (!cJSON_AddNumberToObject(o, "speed", v)) goto oom;
        } else if (!strcmp(e->string, "chapters")) {
            if (!*e->valuestring || !strcmp(e->valuestring, "all")) continue;
            cJSON *a = cJSON_AddArrayToObject(o, "chapters");
            if (!a) goto oom;
            const char *p = e->valuestring;
            while (*p) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p || v < 0 || v > 1000000) {
                    snprintf(err, cap, "chapters: comma-separated indices expected");
                    cJSON_Delete(o);
                    return NULL;
                }
                cJSON *n = cJSON_CreateNumber((double)v);
                if (!n || !cJSON_AddItemToArray(a, n)) { cJSON_Delete(n); goto oom; }
                p = end;
                while (*p == ',' || *p == ' ') p++;
            }
        } else if (strcmp(e->string, "file_id")) {
            if (!cJSON_AddStringToObject(o, e->string, e->valuestring)) goto oom;
        }
    }
    return o;
oom:
    snprintf(err, cap, "out of memory");
    cJSON_Delete(o);
    return NULL;
}

void kk_request_safe_name(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *base = in ? strrchr(in, '/') : NULL;
    const char *b2 = in ? strrchr(in, '\\') : NULL;
    if (b2 && (!base || b2 > base)) base = b2;
    in = base ? base + 1 : (in ? in : "");
    for (; *in && o + 1 < cap && o < 100; in++) {
        char ch = *in;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '-' || ch == '_';
        if (o == 0 && ch == '.') continue;
        out[o++] = ok ? ch : '_';
    }
    out[o] = 0;
    if (!o) snprintf(out, cap, "upload");
}
