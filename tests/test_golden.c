/* Golden tests: the engine against what the upstream PyTorch code computed
 * with the deterministic test weights (tests/data/kokoro-golden.npz,
 * shared/spec/test-weights.md). Each stage is fed the golden inputs of that
 * stage; then the whole pipeline runs from token ids for all three cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "testutil.h"

static kokoro_model *model;

static int setup(void **state)
{
    (void)state;
    if (kokoro_model_load_test_weights(&model) != KOKORO_OK) {
        fprintf(stderr, "loading test weights: %s\n", kokoro_last_error());
        return -1;
    }
    kt_golden();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kokoro_model_free(model);
    return 0;
}

static const float *G(const char *name) { return kt_golden_get(name)->data; }
static size_t GN(const char *name) { return (size_t)kk_tensor_numel(kt_golden_get(name)); }

static void check(const char *stage, const float *out, const char *ref, double tol)
{
    size_t n = GN(ref);
    double e = kt_rel_l2(out, G(ref), n);
    printf("  %-40s rel L2 %.3e  max|d| %.3e  (tol %.0e)\n", stage, e, kt_max_abs(out, G(ref), n), tol);
    assert_true(e <= tol);
}

static float *alloc_f(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* the short case's dimensions */
static int T_, L_;
static int64_t dur_[64];
static const int64_t *ids_(void) { return kt_golden_get("short.input_ids")->data; }
static const float *style_(void) { return G("short.style"); }

static void dims(void)
{
    const kk_tensor *pd = kt_golden_get("short.pred_dur");
    T_ = (int)pd->shape[0];
    L_ = 0;
    for (int i = 0; i < T_; i++) {
        dur_[i] = ((const int64_t *)pd->data)[i];
        L_ += (int)dur_[i];
    }
}

static void test_weights_match_tsv(void **state)
{
    (void)state;
    kk_param_spec *specs;
    size_t count;
    assert_int_equal(kk_model_param_specs(&specs, &count), KOKORO_OK);
    FILE *f = fopen(KOKORO_TEST_DATA "/test-weights.tsv", "r");
    assert_non_null(f);
    char line[512];
    size_t rows = 0;
    long long total = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], shape[64];
        double center, scale;
        if (sscanf(line, "%255s %63s %lf %lf", name, shape, &center, &scale) != 4) continue;
        rows++;
        const kk_param_spec *p = NULL;
        for (size_t i = 0; i < count; i++)
            if (strcmp(specs[i].name, name) == 0) p = &specs[i];
        if (!p) fprintf(stderr, "tensor %s of the TSV is not a model parameter\n", name);
        assert_non_null(p);
        char buf[64];
        kk_shape_str(p->ndim, p->shape, buf, sizeof buf);
        if (strcmp(buf, shape) != 0) fprintf(stderr, "%s: shape %s, TSV %s\n", name, buf, shape);
        assert_string_equal(buf, shape);
        double c, s;
        kk_test_weights_rule(p->name, p->ndim, p->shape, &c, &s);
        if (fabs(c - center) > 1e-12 * fabs(center) || fabs(s - scale) > 1e-12 * fabs(scale))
            fprintf(stderr, "%s: rule gives (%g, %.17g), TSV (%g, %.17g)\n", name, c, s, center, scale);
        assert_true(fabs(c - center) <= 1e-12 * fabs(center) && fabs(s - scale) <= 1e-12 * fabs(scale));
        total += kk_shape_numel(p->ndim, p->shape);
    }
    fclose(f);
    printf("  %zu tensors, %lld values (model lists %zu)\n", rows, total, count);
    assert_int_equal(rows, 688);
    assert_int_equal(count, 688);
    assert_int_equal(total, 81810022LL);
    assert_int_equal(kokoro_model_num_params(model), 81810022u - 0u - 768u * 768u - 768u);
    free(specs);
}

/* the prosody stages run in double precision: golden inputs are widened,
 * outputs compared after narrowing */
static double *dg(const char *name)
{
    size_t n = GN(name);
    const float *f = G(name);
    double *d = malloc(n * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

static double *alloc_d(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static void check_d(const char *stage, const double *out, const char *ref, double tol)
{
    size_t n = GN(ref);
    float *f = alloc_f(n);
    for (size_t i = 0; i < n; i++) f[i] = (float)out[i];
    check(stage, f, ref, tol);
    free(f);
}

static void test_token_stages(void **state)
{
    (void)state;
    dims();
    const int T = T_, L = L_;
    double s_pros[128];
    for (int i = 0; i < 128; i++) s_pros[i] = style_()[128 + i];
    double *bert = alloc_d((size_t)T * 768), *den = alloc_d((size_t)T * 512), *d = alloc_d((size_t)T * 640);
    double *x = alloc_d((size_t)T * 512), *lg = alloc_d((size_t)T * 50);
    float *dur = alloc_f((size_t)T);
    int64_t n[64];
    double *g_bert = dg("short.bert"), *g_den = dg("short.bert_encoder"), *g_d = dg("short.predictor.text_encoder");
    double *g_lstm = dg("short.predictor.lstm"), *g_lg = dg("short.predictor.duration_proj");
    double *g_sh = dg("short.predictor.shared");
    assert_int_equal(kk_bert(model, ids_(), T, bert), KOKORO_OK);
    check_d("bert", bert, "short.bert", 1e-4);
    assert_int_equal(kk_bert_encoder(model, g_bert, T, den), KOKORO_OK);
    check_d("bert_encoder", den, "short.bert_encoder", 1e-4);
    /* the bfloat16 mode's float32 ALBERT + bert_encoder (weights converted on first use), twice */
    for (int rep = 0; rep < 2; rep++) {
        assert_int_equal(kk_bert_encoded_f32(model, ids_(), T, den), KOKORO_OK);
        check_d("bert_encoder (float32 ALBERT)", den, "short.bert_encoder", 1e-4);
    }
    assert_int_equal(kk_duration_encoder(model, g_den, T, s_pros, d), KOKORO_OK);
    check_d("predictor.text_encoder", d, "short.predictor.text_encoder", 1e-4);
    assert_int_equal(kk_predictor_lstm(model, g_d, T, x), KOKORO_OK);
    check_d("predictor.lstm", x, "short.predictor.lstm", 1e-4);
    assert_int_equal(kk_duration_proj(model, g_lstm, T, lg), KOKORO_OK);
    check_d("predictor.duration_proj", lg, "short.predictor.duration_proj", 1e-4);
    int64_t Lc = kk_durations(g_lg, T, G("short.speed")[0], dur, n);
    check("durations (float)", dur, "short.duration", 1e-4);
    assert_int_equal(Lc, L);
    for (int i = 0; i < T; i++) assert_int_equal(n[i], dur_[i]);

    double *en = alloc_d((size_t)L * 640), *sh = alloc_d((size_t)L * 512);
    double *F0 = alloc_d(2 * (size_t)L), *N = alloc_d(2 * (size_t)L);
    float *ten = alloc_f(512 * (size_t)T);
    kk_align_rows(g_d, T, 640, dur_, en);
    assert_int_equal(kk_predictor_shared(model, en, L, sh), KOKORO_OK);
    check_d("predictor.shared", sh, "short.predictor.shared", 1e-4);
    assert_int_equal(kk_predictor_f0n(model, g_sh, L, s_pros, F0, N), KOKORO_OK);
    check_d("predictor.F0_proj", F0, "short.predictor.F0_proj", 1e-4);
    check_d("predictor.N_proj", N, "short.predictor.N_proj", 1e-4);
    { /* the bfloat16 mode's float32 branches */
        float *F0f = alloc_f(2 * (size_t)L), *Nf = alloc_f(2 * (size_t)L);
        assert_int_equal(kk_predictor_f0n_f32(model, g_sh, L, s_pros, F0f, Nf), KOKORO_OK);
        check("predictor.F0_proj (float32)", F0f, "short.predictor.F0_proj", 1e-4);
        check("predictor.N_proj (float32)", Nf, "short.predictor.N_proj", 1e-4);
        free(F0f), free(Nf);
    }
    assert_int_equal(kk_text_encoder(model, ids_(), T, ten), KOKORO_OK);
    check("text_encoder", ten, "short.text_encoder", 1e-4);
    free(bert), free(den), free(d), free(x), free(lg), free(dur), free(en), free(sh), free(F0), free(N), free(ten);
    free(g_bert), free(g_den), free(g_d), free(g_lstm), free(g_lg), free(g_sh);
}

static void test_decoder_stages(void **state)
{
    (void)state;
    dims();
    const int T = T_, L = L_;
    const float *s_dec = style_();
    float *asr = alloc_f(512 * (size_t)L), *x = alloc_f(1024 * (size_t)L), *F0d = alloc_f((size_t)L);
    float *Nd = alloc_f((size_t)L), *ar = alloc_f(64 * (size_t)L), *y = alloc_f(1024 * 2 * (size_t)L);
    kk_align_cols(G("short.text_encoder"), 512, T, dur_, L, asr);
    assert_int_equal(kk_decoder_encode(model, asr, G("short.predictor.F0_proj"), G("short.predictor.N_proj"), L,
                                       s_dec, x, F0d, Nd, 0),
                     KOKORO_OK);
    check("decoder.encode", x, "short.decoder.encode", 1e-4);
    assert_int_equal(kk_decoder_asr_res(model, asr, L, ar), KOKORO_OK);
    check("decoder.asr_res", ar, "short.decoder.asr_res", 1e-4);
    char prev[64] = "short.decoder.encode";
    for (int i = 0; i < 4; i++) {
        char name[64], stage[64];
        snprintf(name, sizeof name, "short.decoder.decode.%d", i);
        snprintf(stage, sizeof stage, "decoder.decode.%d", i);
        assert_int_equal(kk_decoder_decode(model, i, G(prev), G("short.decoder.asr_res"), F0d, Nd, L, s_dec, y, 0),
                         KOKORO_OK);
        check(stage, y, name, 1e-4);
        snprintf(prev, sizeof prev, "%s", name);
    }
    free(asr), free(x), free(F0d), free(Nd), free(ar), free(y);
}

static void test_generator_stages(void **state)
{
    (void)state;
    dims();
    const int L = L_, M = 2 * L, nsrc = 600 * L, F = 120 * L + 1, n0 = 20 * L;
    const float *s_dec = style_();
    float *src = alloc_f((size_t)nsrc), *har = alloc_f(22 * (size_t)F);
    kk_noise off = {0};
    assert_int_equal(kk_gen_source(model, G("short.predictor.F0_proj"), M, &off, src), KOKORO_OK);
    check("generator.m_source", src, "short.decoder.generator.m_source", 5e-3);

    /* STFT of the golden source: magnitude, and phase modulo 2π where it matters */
    assert_int_equal(kk_gen_stft(G("short.decoder.generator.m_source"), nsrc, har), F);
    check("generator.har_spec", har, "short.decoder.generator.har_spec", 1e-4);
    const float *gs = G("short.decoder.generator.har_spec"), *gp = G("short.decoder.generator.har_phase");
    float mx = 0;
    for (size_t i = 0; i < 11 * (size_t)F; i++) mx = gs[i] > mx ? gs[i] : mx;
    double worst = 0;
    size_t counted = 0;
    for (size_t i = 0; i < 11 * (size_t)F; i++) {
        if (gs[i] <= 1e-3 * mx) continue;
        double dphi = fabs(remainder((double)har[11 * (size_t)F + i] - gp[i], 2 * M_PI));
        worst = dphi > worst ? dphi : worst;
        counted++;
    }
    printf("  %-40s max |dphase| %.3e rad over %zu bins (tol 1e-3)\n", "generator.har_phase", worst, counted);
    assert_true(counted > 0 && worst <= 1e-3);

    /* the golden harmonic spectrum as the generator consumed it */
    float *gh = alloc_f(22 * (size_t)F);
    memcpy(gh, gs, 11 * (size_t)F * sizeof *gh);
    memcpy(gh + 11 * (size_t)F, gp, 11 * (size_t)F * sizeof *gh);
    float *a = alloc_f(256 * (size_t)F), *b = alloc_f(256 * (size_t)F);
    int no;
    assert_int_equal(kk_gen_noise_branch(model, 0, gh, F, s_dec, a, &no), KOKORO_OK);
    assert_int_equal(no, n0);
    check("generator.noise_res.0", a, "short.decoder.generator.noise_res.0", 1e-4);
    assert_int_equal(kk_gen_noise_branch(model, 1, gh, F, s_dec, a, &no), KOKORO_OK);
    assert_int_equal(no, F);
    check("generator.noise_res.1", a, "short.decoder.generator.noise_res.1", 1e-4);
    assert_int_equal(kk_gen_ups(model, 0, G("short.decoder.decode.3"), M, a, &no, NULL), KOKORO_OK);
    assert_int_equal(no, n0);
    check("generator.ups.0", a, "short.decoder.generator.ups.0", 1e-4);

    /* stage-0 resblocks on golden (ups.0 + noise_res.0), then ups.1 */
    const float *u0 = G("short.decoder.generator.ups.0"), *r0 = G("short.decoder.generator.noise_res.0");
    for (size_t i = 0; i < 256 * (size_t)n0; i++) a[i] = u0[i] + r0[i];
    assert_int_equal(kk_gen_resblocks(model, 0, a, n0, s_dec, b), KOKORO_OK);
    assert_int_equal(kk_gen_ups(model, 1, b, n0, a, &no, NULL), KOKORO_OK);
    assert_int_equal(no, F - 1);
    check("generator.ups.1", a, "short.decoder.generator.ups.1", 1e-4);

    /* stage-1: reflection pad + noise_res.1, resblocks, conv_post */
    const float *u1 = G("short.decoder.generator.ups.1"), *r1 = G("short.decoder.generator.noise_res.1");
    for (int c = 0; c < 128; c++)
        for (int t = 0; t < F; t++)
            a[(size_t)c * F + t] = u1[(size_t)c * (F - 1) + (t == 0 ? 1 : t - 1)] + r1[(size_t)c * F + t];
    assert_int_equal(kk_gen_resblocks(model, 1, a, F, s_dec, b), KOKORO_OK);
    assert_int_equal(kk_gen_post(model, b, F, a, NULL), KOKORO_OK);
    check("generator.conv_post", a, "short.decoder.generator.conv_post", 1e-4);

    /* iSTFT of the golden conv_post output is the golden audio */
    assert_int_equal(kk_istft(G("short.decoder.generator.conv_post"), F, src), KOKORO_OK);
    check("generator iSTFT -> audio", src, "short.audio", 1e-4);
    free(src), free(har), free(gh), free(a), free(b);
}

static void run_case(const char *c)
{
    char k[64];
    snprintf(k, sizeof k, "%s.input_ids", c);
    const kk_tensor *ids = kt_golden_get(k);
    size_t T = (size_t)ids->shape[1];
    snprintf(k, sizeof k, "%s.style", c);
    const float *style = G(k);
    snprintf(k, sizeof k, "%s.speed", c);
    kokoro_synth_options o = kokoro_synth_options_default();
    o.speed = G(k)[0];
    o.no_noise = 1;
    kokoro_audio out;
    kokoro_status st = kokoro_synthesize(model, (const int64_t *)ids->data + 1, T - 2, style, &o, &out);
    if (st != KOKORO_OK) fprintf(stderr, "%s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    snprintf(k, sizeof k, "%s.pred_dur", c);
    const int64_t *pd = kt_golden_get(k)->data;
    assert_int_equal(out.n_durations, T);
    for (size_t i = 0; i < T; i++) assert_int_equal(out.durations[i], pd[i]);
    snprintf(k, sizeof k, "%s.audio", c);
    const kk_tensor *ref = kt_golden_get(k);
    assert_int_equal(out.n_samples, (size_t)ref->shape[0]);
    double e = kt_rel_l2(out.samples, ref->data, out.n_samples);
    double corr = kt_spectral_corr(out.samples, ref->data, out.n_samples);
    printf("  pipeline %-6s T=%3zu samples=%6zu  rel L2 %.3e (tol 1e-2)  spectral corr %.7f (min 0.9999)\n", c, T,
           out.n_samples, e, corr);
    assert_true(e <= 1e-2);
    assert_true(corr >= 0.9999);
    kokoro_audio_free(&out);
}

static void test_pipeline_short(void **state) { (void)state; run_case("short"); }
static void test_pipeline_fast(void **state) { (void)state; run_case("fast"); }
static void test_pipeline_slow(void **state) { (void)state; run_case("slow"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_match_tsv),  cmocka_unit_test(test_token_stages),
        cmocka_unit_test(test_decoder_stages),     cmocka_unit_test(test_generator_stages),
        cmocka_unit_test(test_pipeline_short),     cmocka_unit_test(test_pipeline_fast),
        cmocka_unit_test(test_pipeline_slow),
    };
    return cmocka_run_group_tests_name("golden", tests, setup, teardown);
}
