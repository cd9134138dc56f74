/*
 * kokoro-convert — writes our own model file from the official checkpoint,
 * so that later runs load in a fraction of a second (the file is mapped and
 * its float32 weights are used in place).
 *
 *   kokoro-convert [--test-weights | MODEL] OUT [--voices PATH] [--dtype f32|bf16]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kokoro.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kokoro-convert [--test-weights | MODEL] OUT [--voices PATH] [--dtype f32|bf16]\n"
            "  MODEL            kokoro-v1_0.pth, a .npz state dict, or a file this tool wrote\n"
            "  OUT              the file to write (OUT.tmp first, then renamed)\n"
            "  --test-weights   the deterministic test weights instead of MODEL (noise, for tests)\n"
            "  --voices PATH    carry these voices (voices-v1.0.bin, a .pt/.bin or a folder)\n"
            "  --dtype f32|bf16 how the weights are stored (default f32: used in place;\n"
            "                   bf16: the decoder stored bfloat16, the file 2/3 the size)\n"
            "  --verify         load OUT afterwards and report the load time\n");
}

int main(int argc, char **argv)
{
    const char *voices = NULL, *dtype_name = "f32";
    int test_weights = 0, verify = 0;
    static const struct option longopts[] = {{"voices", required_argument, 0, 'v'},
                                              {"dtype", required_argument, 0, 'd'},
                                              {"test-weights", no_argument, 0, 'w'},
                                              {"verify", no_argument, 0, 'V'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'v': voices = optarg; break;
        case 'd': dtype_name = optarg; break;
        case 'w': test_weights = 1; break;
        case 'V': verify = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int npos = argc - optind;
    if (npos != (test_weights ? 1 : 2)) {
        fprintf(stderr, "kokoro-convert: expected %s\n", test_weights ? "OUT (with --test-weights)" : "MODEL OUT");
        usage(stderr);
        return 2;
    }
    kokoro_dtype dtype;
    if (strcmp(dtype_name, "f32") == 0 || strcmp(dtype_name, "float32") == 0) {
        dtype = KOKORO_DTYPE_F32;
    } else if (strcmp(dtype_name, "bf16") == 0 || strcmp(dtype_name, "bfloat16") == 0) {
        dtype = KOKORO_DTYPE_BF16;
    } else {
        fprintf(stderr, "kokoro-convert: --dtype must be f32 or bf16, not '%s'\n", dtype_name);
        return 2;
    }
    const char *model = test_weights ? NULL : argv[optind];
    const char *out = argv[argc - 1];
    double t0 = now();
    if (kokoro_model_convert(model, voices, out, dtype) != KOKORO_OK) {
        fprintf(stderr, "kokoro-convert: %s\n", kokoro_last_error());
        return 1;
    }
    printf("kokoro-convert: wrote %s (%s) in %.2f s\n", out, dtype == KOKORO_DTYPE_BF16 ? "bfloat16" : "float32",
           now() - t0);
    if (verify) {
        kokoro_model *m;
        t0 = now();
        if (kokoro_model_load(out, &m) != KOKORO_OK) {
            fprintf(stderr, "kokoro-convert: %s\n", kokoro_last_error());
            return 1;
        }
        printf("kokoro-convert: %s loads in %.3f s (%zu parameters)\n", out, now() - t0, kokoro_model_num_params(m));
        kokoro_model_free(m);
    }
    return 0;
}
