#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/npz.h"

double kt_rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double kt_max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = d;
    }
    return m;
}

/* magnitude spectrogram, n_fft 512, hop 128, periodic Hann, no padding */
static double *spectrogram(const float *x, size_t n, size_t *count)
{
    const int NF = 512, HOP = 128, NB = NF / 2 + 1;
    size_t frames = n >= (size_t)NF ? (n - NF) / HOP + 1 : 1;
    double *out = calloc(frames * NB, sizeof *out);
    double *cs = malloc(NF * sizeof *cs), *sn = malloc(NF * sizeof *sn), *win = malloc(NF * sizeof *win);
    double *fr = malloc(NF * sizeof *fr);
    for (int i = 0; i < NF; i++) {
        cs[i] = cos(2 * M_PI * i / NF);
        sn[i] = sin(2 * M_PI * i / NF);
        win[i] = 0.5 - 0.5 * cos(2 * M_PI * i / NF);
    }
    for (size_t f = 0; f < frames; f++) {
        for (int i = 0; i < NF; i++) {
            size_t p = f * HOP + i;
            fr[i] = p < n ? win[i] * x[p] : 0.0;
        }
        for (int k = 0; k < NB; k++) {
            double re = 0, im = 0;
            for (int i = 0; i < NF; i++) {
                int q = (k * i) % NF;
                re += fr[i] * cs[q];
                im -= fr[i] * sn[q];
            }
            out[f * NB + k] = sqrt(re * re + im * im);
        }
    }
    free(cs);
    free(sn);
    free(win);
    free(fr);
    *count = frames * NB;
    return out;
}

double kt_spectral_corr(const float *a, const float *b, size_t n)
{
    size_t na, nb;
    double *sa = spectrogram(a, n, &na), *sb = spectrogram(b, n, &nb);
    double ma = 0, mb = 0;
    for (size_t i = 0; i < na; i++) {
        ma += sa[i];
        mb += sb[i];
    }
    ma /= na;
    mb /= na;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < na; i++) {
        double x = sa[i] - ma, y = sb[i] - mb;
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    free(sa);
    free(sb);
    return (saa > 0 && sbb > 0) ? sab / sqrt(saa * sbb) : 0.0;
}

static kk_table golden;
static int golden_loaded;

static void free_golden(void) { kk_table_free(&golden); }

const kk_table *kt_golden(void)
{
    if (!golden_loaded) {
        kokoro_status st = kk_npz_read(KOKORO_TEST_DATA "/kokoro-golden.npz", &golden);
        if (st != KOKORO_OK) {
            fprintf(stderr, "cannot read golden data: %s\n", kokoro_last_error());
            fail();
        }
        golden_loaded = 1;
        atexit(free_golden);
    }
    return &golden;
}

const kk_tensor *kt_golden_get(const char *name)
{
    const kk_tensor *t = kk_table_find(kt_golden(), name);
    if (!t) {
        fprintf(stderr, "golden tensor '%s' missing\n", name);
        fail();
    }
    return t;
}
