/* schema_numbers.c - GBNF for integers and numbers between bounds.
 *
 * Integers: llama.cpp builds digit-by-digit range rules for "minimum" /
 * "maximum" on integers, allowing up to 16 digits where a side is
 * unbounded. We give the same language by another construction: an
 * unbounded side becomes the 16-digit limit, then [lo, hi] is split into
 * negative, zero and positive parts, positives by digit count, and each
 * equal-length range [s, t] into its common prefix, then the first
 * differing digit: s's digit followed by suffixes >= s's rest, the digits
 * strictly between followed by anything, t's digit followed by suffixes <=
 * t's rest (a side whose rest is all 0s or all 9s joins the middle).
 *
 * Numbers (our addition; llama.cpp ignores bounds on numbers): integer
 * bounds only, no exponent. For y = I.F >= 0 (integer part I, fraction F):
 * y >= a iff I >= a; y > a iff I > a, or I = a and F is not all zeros;
 * y <= b iff I < b, or I = b and F is all zeros; y < b iff I < b. Negative
 * numbers are -y with the bounds mirrored. */
#include "schema_conv.h"

#include <stdio.h>
#include <string.h>

static void digits_class(sm_sbuf *out, char lo, char hi) {
    if (lo == hi) sm_sb_printf(out, "[%c]", lo);
    else sm_sb_printf(out, "[%c-%c]", lo, hi);
}

static void any_digits(sm_sbuf *out, int n) {
    if (n == 1) sm_sb_add(out, "[0-9]");
    else sm_sb_printf(out, "[0-9]{%d}", n);
}

/* Digit strings of length k between s and t (s <= t). */
static void same_length(sm_sbuf *out, const char *s, const char *t, int k) {
    int i = 0;
    while (i < k && s[i] == t[i]) i++;
    if (i == k) {
        sm_sb_printf(out, "\"%.*s\"", k, s);
        return;
    }
    int rest = k - i - 1;
    if (i > 0) sm_sb_printf(out, "\"%.*s\" ", i, s);
    if (rest == 0) {
        digits_class(out, s[i], t[i]);
        return;
    }
    int lower_full = 1, upper_full = 1;
    for (int j = i + 1; j < k; j++) {
        if (s[j] != '0') lower_full = 0;
        if (t[j] != '9') upper_full = 0;
    }
    char lo_d = lower_full ? s[i] : (char)(s[i] + 1), hi_d = upper_full ? t[i] : (char)(t[i] - 1);
    char nines[24], zeros[24];
    memset(nines, '9', (size_t)rest);
    memset(zeros, '0', (size_t)rest);
    int n = 0;
    sm_sb_add(out, "(");
    if (!lower_full) {
        digits_class(out, s[i], s[i]);
        sm_sb_add(out, " (");
        same_length(out, s + i + 1, nines, rest);
        sm_sb_add(out, ")");
        n++;
    }
    if (lo_d <= hi_d) {
        if (n++) sm_sb_add(out, " | ");
        digits_class(out, lo_d, hi_d);
        sm_sb_add(out, " ");
        any_digits(out, rest);
    }
    if (!upper_full) {
        if (n++) sm_sb_add(out, " | ");
        digits_class(out, t[i], t[i]);
        sm_sb_add(out, " (");
        same_length(out, zeros, t + i + 1, rest);
        sm_sb_add(out, ")");
    }
    sm_sb_add(out, ")");
}

/* Positive integers in [a, b], 1 <= a <= b. */
static void positive_range(sm_sbuf *out, int64_t a, int64_t b) {
    int64_t p = 1;   /* 10^(L-1) */
    int first = 1;
    for (int len = 1; len <= 19 && p <= b; len++, p *= 10) {
        int64_t top = p <= INT64_MAX / 10 ? p * 10 - 1 : INT64_MAX;
        int64_t lo = a > p ? a : p, hi = b < top ? b : top;
        if (lo > hi) continue;
        char s[24], t[24];
        int k = snprintf(s, sizeof s, "%lld", (long long)lo);
        snprintf(t, sizeof t, "%lld", (long long)hi);
        if (!first) sm_sb_add(out, " | ");
        first = 0;
        same_length(out, s, t, k);
    }
}

void sm_schema_int_range(sm_sbuf *out, int64_t lo, int64_t hi) {
    int n = 0;
    sm_sb_add(out, "(");
    if (lo < 0) {
        sm_sb_add(out, "\"-\" (");
        positive_range(out, hi < 0 ? -hi : 1, -lo);
        sm_sb_add(out, ")");
        n++;
    }
    if (lo <= 0 && hi >= 0) {
        if (n++) sm_sb_add(out, " | ");
        sm_sb_add(out, "\"0\"");
    }
    if (hi > 0) {
        if (n++) sm_sb_add(out, " | ");
        positive_range(out, lo > 1 ? lo : 1, hi);
    }
    sm_sb_add(out, ")");
}

#define FRACTION_ANY "(\".\" [0-9]{1,16})?"
#define FRACTION_ZERO "(\".\" [0]{1,16})?"
#define FRACTION_NONZERO "\".\" [0]{0,15} [1-9] [0-9]{0,15}"

/* y = I.F >= 0 with a <(=) y and, when has_b, y <(=) b. Returns how many
 * alternatives it wrote (0: none). */
static int unsigned_range(sm_sbuf *out, int64_t a, int a_excl, int has_b, int64_t b, int b_excl) {
    int n = 0;
    int64_t i_lo = a_excl ? a + 1 : a, i_hi = has_b ? b - 1 : SM_SCHEMA_INT_LIMIT;
    if (i_lo <= i_hi) {
        sm_schema_int_range(out, i_lo, i_hi);
        sm_sb_add(out, " " FRACTION_ANY);
        n++;
    }
    if (a_excl && (!has_b || a < b)) {
        if (n++) sm_sb_add(out, " | ");
        sm_sb_printf(out, "\"%lld\" " FRACTION_NONZERO, (long long)a);
    }
    if (has_b && !b_excl && (b > a || (b == a && !a_excl))) {
        if (n++) sm_sb_add(out, " | ");
        sm_sb_printf(out, "\"%lld\" " FRACTION_ZERO, (long long)b);
    }
    return n;
}

int sm_schema_number_range(sm_sbuf *out, int has_lo, int64_t lo, int lo_excl, int has_hi, int64_t hi, int hi_excl) {
    int n = 0;
    sm_sbuf part = {0};
    sm_sb_add(out, "(");
    /* x >= 0 */
    if (!(has_hi && (hi < 0 || (hi == 0 && hi_excl)))) {
        int from_lo = has_lo && lo >= 0;
        if (unsigned_range(&part, from_lo ? lo : 0, from_lo ? lo_excl : 0, has_hi, hi, hi_excl)) {
            sm_sb_addn(out, part.p, part.n);
            n++;
        }
    }
    /* x < 0, as "-" y with y > 0 */
    if (!(has_lo && lo >= 0)) {
        part.n = 0;
        int from_hi = has_hi && hi < 0;
        if (unsigned_range(&part, from_hi ? -hi : 0, from_hi ? hi_excl : 1, has_lo, has_lo ? -lo : 0, lo_excl)) {
            if (n++) sm_sb_add(out, " | ");
            sm_sb_add(out, "\"-\" (");
            sm_sb_addn(out, part.p, part.n);
            sm_sb_add(out, ")");
        }
    }
    sm_sb_add(out, ")");
    if (part.oom) out->oom = 1;
    sm_sb_free(&part);
    return n;
}
