/* kokoro-bench's pipeline benchmark (--text / --book): the engine end to end
 * over workers × threads configurations, each in a fresh child process. */
#ifndef KK_BENCH_PIPELINE_H
#define KK_BENCH_PIPELINE_H

/* Non-zero when argv asks for the pipeline benchmark rather than --cases. */
int kk_bench_pipeline_wanted(int argc, char **argv);
/* Runs it; returns the process exit status (0 ok, 1 failure or audio that
 * differs from its sequential baseline, 2 usage). */
int kk_bench_pipeline_main(int argc, char **argv);

#endif
