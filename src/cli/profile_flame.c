/* profile_flame.c - a profiled scope tree as folded stacks and as a flame
 * graph. Folded stacks are Brendan Gregg's format (flamegraph.pl's input,
 * which inferno and speedscope also read): one line per node, its frames
 * from the top scope down joined by ';', a space and a count, here its self
 * time in microseconds, so the counts add up to the report's self times.
 * The flame graph is drawn from the same tree by our own SVG writer: one
 * box per node, as wide as its inclusive time, children left to right on
 * top of their parent. */
#include "profile_report.h"
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A node's frame: "layer N" for a layer, else the step's name. */
static void frame(const sm_profile_row *r, char *out, size_t cap) {
    if (r->layer >= 0 && !strcmp(r->name, "layer")) snprintf(out, cap, "layer %d", r->layer);
    else snprintf(out, cap, "%s", r->name);
}

int profile_write_folded(FILE *f, const sm_profile_row *rows, int n) {
    for (int i = 0; i < n; i++) {
        long long us = llround(rows[i].self_ms * 1000.0);
        if (us <= 0) continue;
        /* the frames from the top: walk up, then print in reverse */
        int chain[64], depth = 0;
        for (int r = i; r >= 0 && depth < 64; r = rows[r].parent) chain[depth++] = r;
        for (int k = depth - 1; k >= 0; k--) {
            char name[96];
            frame(&rows[chain[k]], name, sizeof name);
            for (char *c = name; *c; c++)
                if (*c == ';') *c = ',';   /* ';' separates frames */
            fprintf(f, "%s%s", name, k ? ";" : "");
        }
        fprintf(f, " %lld\n", us);
    }
    return ferror(f) ? -1 : 0;
}

static void xml(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* A warm colour from the name, so one step has one colour everywhere. */
static void colour(const char *name, int *r, int *g, int *b) {
    uint32_t h = 2166136261u;
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    *r = 205 + (int)(h % 50);
    *g = 80 + (int)((h >> 8) % 130);
    *b = 30 + (int)((h >> 16) % 40);
}

#define FLAME_W 1200.0
#define FLAME_H 17
#define FLAME_TOP 46

int profile_write_flame(FILE *f, const sm_profile_row *rows, int n, const char *title) {
    double total = 0;
    int max_depth = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].depth == 0) total += rows[i].incl_ms;
        if (rows[i].depth > max_depth) max_depth = rows[i].depth;
    }
    double *x = calloc((size_t)n + 1, sizeof *x), *cursor = calloc((size_t)n + 1, sizeof *cursor);
    if (!x || !cursor) {
        free(x);
        free(cursor);
        return -1;
    }
    int levels = max_depth + 2;   /* and the "all" frame */
    int height = FLAME_TOP + levels * FLAME_H + 30;
    double scale = total > 0 ? FLAME_W / total : 0, top_cursor = 0;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"monospace\" font-size=\"11\">\n", (int)FLAME_W + 20, height, (int)FLAME_W + 20, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fdfdf6\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\" "
               "font-family=\"sans-serif\">");
    xml(f, title ? title : "SmallMind flame graph");
    fprintf(f, "</text>\n<text x=\"10\" y=\"36\" font-family=\"sans-serif\" fill=\"#555\">width: inclusive time "
               "(%.3f ms in all); a box's own time is what its children leave; hover for figures</text>\n", total);
    /* the root frame at the bottom */
    int y0 = FLAME_TOP + (levels - 1) * FLAME_H;
    fprintf(f, "<g><title>all: %.3f ms</title><rect x=\"10\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"#c8c8c8\" "
               "rx=\"2\"/><text x=\"13\" y=\"%d\">all</text></g>\n", total, y0, FLAME_W, FLAME_H - 1, y0 + 12);
    for (int i = 0; i < n; i++) {
        const sm_profile_row *r = &rows[i];
        double *cur = r->parent >= 0 ? &cursor[r->parent] : &top_cursor;
        double px = r->parent >= 0 ? x[r->parent] : 0;
        x[i] = px + *cur;
        cursor[i] = 0;
        *cur += r->incl_ms;
        double w = r->incl_ms * scale;
        if (w < 0.3) continue;
        int y = FLAME_TOP + (levels - 2 - r->depth) * FLAME_H;
        char name[96];
        frame(r, name, sizeof name);
        int cr, cg, cb;
        colour(r->name, &cr, &cg, &cb);
        fprintf(f, "<g><title>");
        xml(f, name);
        fprintf(f, ": %.3f ms inclusive, %.3f ms self, %llu calls (%.2f %%)</title>", r->incl_ms, r->self_ms,
                (unsigned long long)r->calls, total > 0 ? 100.0 * r->incl_ms / total : 0.0);
        fprintf(f, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" rx=\"2\"/>",
                10 + x[i] * scale, y, w, FLAME_H - 1, cr, cg, cb);
        int chars = (int)((w - 6) / 6.6);
        if (chars >= 3) {
            char label[96];
            size_t len = strlen(name);
            if ((int)len > chars) snprintf(label, sizeof label, "%.*s..", chars - 2, name);
            else snprintf(label, sizeof label, "%s", name);
            fprintf(f, "<text x=\"%.2f\" y=\"%d\">", 13 + x[i] * scale, y + 12);
            xml(f, label);
            fprintf(f, "</text>");
        }
        fprintf(f, "</g>\n");
    }
    fprintf(f, "</svg>\n");
    free(x);
    free(cursor);
    return ferror(f) ? -1 : 0;
}

int profile_write_flame_files(const char *cmd, const sm_profile_step *steps, int n, const char *folded_path,
                              const char *flame_path, const char *title) {
    if (!folded_path && !flame_path) return 0;
    sm_profile_row *rows = malloc(((size_t)n + 1) * sizeof *rows);
    if (!rows) {
        cli_error(cmd, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) rows[i] = steps[i].row;
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        const char *path = k ? flame_path : folded_path;
        if (!path) continue;
        FILE *f = fopen(path, "w");
        if (!f) {
            cli_error(cmd, "cannot write '%s': %s", path, strerror(errno));
            rc = -1;
            break;
        }
        int w = k ? profile_write_flame(f, rows, n, title) : profile_write_folded(f, rows, n);
        if (fclose(f) != 0 || w != 0) {
            cli_error(cmd, "cannot write '%s'", path);
            rc = -1;
        }
    }
    free(rows);
    return rc;
}
