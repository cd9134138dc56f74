/* kokoro-bench's kernel benchmark (--conv): the direct convolution alone on
 * the generator's resblock shapes, 1 thread against N. */
#ifndef KK_BENCH_CONV_H
#define KK_BENCH_CONV_H

/* Non-zero when argv asks for the convolution benchmark. */
int kk_bench_conv_wanted(int argc, char **argv);
/* Runs it; returns the process exit status (0 ok, 1 failure, 2 usage). */
int kk_bench_conv_main(int argc, char **argv);

#endif
