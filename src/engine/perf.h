/* Internal: kokoro_perf_config_resolve for a given number of cores, so the
 * rule can be tested for machines other than this one. */
#ifndef KK_PERF_H
#define KK_PERF_H

#include "kokoro.h"

void kk_perf_resolve(const kokoro_perf_config *c, int cores, int *workers, int *threads);

#endif
