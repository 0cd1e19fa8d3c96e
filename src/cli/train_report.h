/* train_report.h - the report of `smallmind train --profile` (train_report.c). */
#ifndef SM_CLI_TRAIN_REPORT_H
#define SM_CLI_TRAIN_REPORT_H

#include "smallmind.h"

/* Writes MODEL.profile.md, MODEL.profile.json and MODEL.roofline.svg beside
 * p->out, and the folded stacks and flame graph if given. 0, or -1 with
 * the problem printed. */
int train_report_write(const char *cmd, const sm_train_params *p, const sm_train_profile *tp, const char *folded,
                       const char *flame);

#endif
