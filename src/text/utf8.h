/* utf8.h - UTF-8 validation and a streaming decoder that only ever emits
 * whole characters. */
#ifndef SM_TEXT_UTF8_H
#define SM_TEXT_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one
 * (bad lead byte, missing/bad continuation, overlong, surrogate, >U+10FFFF). */
size_t sm_utf8_seq_len(const unsigned char *s, size_t avail);

/* Returns the offset of the first invalid byte, or len if all is valid. */
size_t sm_utf8_validate(const char *s, size_t len);

/* Byte length a lead byte announces (1-4), or 0 for a continuation or an
 * impossible lead byte. */
size_t sm_utf8_lead_len(unsigned char c);

/* Token pieces can end in the middle of a character (byte-fallback tokens
 * carry one byte each). The stream holds the incomplete tail back until the
 * rest arrives; a sequence that can never become valid is replaced by
 * U+FFFD, one per bad byte. */
typedef struct sm_utf8_stream {
    unsigned char pending[4];
    size_t n_pending;
} sm_utf8_stream;

/* Writes the complete characters to out, which must have room for
 * 3 * (len + 4) bytes. Returns the bytes written. */
size_t sm_utf8_stream_feed(sm_utf8_stream *st, const char *in, size_t len, char *out);
/* Emits whatever is still pending (as U+FFFD) at the end of a stream; out
 * needs 12 bytes. */
size_t sm_utf8_stream_flush(sm_utf8_stream *st, char *out);

#endif
