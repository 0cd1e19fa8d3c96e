/* ggml_dequant.c - a helper of make_refs.sh, built against llama.cpp's ggml
 * (not part of SmallMind): dequantizes a file of raw blocks of one ggml type
 * with ggml's own to_float and writes the floats.
 *   ggml_dequant TYPE_NUMBER N_ELEMENTS IN.bin OUT.f32 */
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    /* ggml_init fills the fp16 conversion table to_float may read */
    struct ggml_init_params ip = {1024, NULL, 1};
    ggml_free(ggml_init(ip));
    enum ggml_type type = (enum ggml_type)atoi(argv[1]);
    long n = atol(argv[2]);
    size_t bytes = ggml_row_size(type, n);
    void *in = malloc(bytes);
    float *out = malloc(sizeof(float) * (size_t)n);
    FILE *f = fopen(argv[3], "rb");
    if (!in || !out || !f || fread(in, 1, bytes, f) != bytes) return 1;
    fclose(f);
    ggml_get_type_traits(type)->to_float(in, out, n);
    f = fopen(argv[4], "wb");
    if (!f || fwrite(out, sizeof(float), (size_t)n, f) != (size_t)n) return 1;
    return fclose(f) != 0;
}
