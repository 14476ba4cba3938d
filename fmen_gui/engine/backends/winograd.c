/*
 * FMEN Upscaler: 3x3 convolution (stride 1, zero padding 1) by Winograd's F(2x2, 3x3) on the CPU.
 *
 * Why: FMEN's layers are 3x3 convolutions on 50 (FMEN-S) or 64 channels. Direct convolution
 * needs 9 multiply-adds per input channel, output channel and pixel; F(2x2, 3x3) computes each
 * 2x2 block of outputs from a 4x4 input window with 16 products instead of 36, i.e. 4 per
 * pixel (2.25x fewer), at the price of cheap additions before and after (the transforms).
 *
 * Exactness: every 2x2 output block is computed from its own 4x4 window with one fixed
 * sequence of operations, so a pixel gets the same bits whatever the image or tile size, as
 * long as the block grid is aligned the same way (the engine makes tile boxes start at even
 * coordinates). Image borders read zeros, exactly like zero padding.
 *
 * Layouts (float32): x is H x W x cin (channels-last, one image); out and other are
 * H x W x cout. U holds the transformed weights, [16][cinp][co] with cinp and co the channel
 * counts rounded up to the vector width (16 with AVX-512, 8 with AVX2; zeros in the padding);
 * bias has co entries.
 *
 * Epilogue per output value q = conv + bias:
 *   other_op 1: q += other          (residual)         act 1: leaky ReLU (slope)
 *   other_op 2: q  = act(q) * other (gate)             act 2: sigmoid
 * Threads: OpenMP, see fmen_wino_conv3x3.
 *
 * Two builds of the same algorithm live here, each compiled for its instruction set: AVX-512
 * (F, DQ, BW, VL; 16 lanes) and AVX2 + FMA (8 lanes, for laptops without AVX-512). The caller
 * checks the CPU and picks one; each is exact with itself, and they agree to about 1e-6.
 */
#include <immintrin.h>
#include <omp.h>
#include <stddef.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")

#define AI static inline __attribute__((always_inline))
/* 2x2 blocks per GEMM micro-kernel call: about 24 accumulators, enough to keep both FMA
   units busy through their latency, few enough to leave registers for the operands. */
#define RT(NV) ((NV) == 1 ? 16 : (NV) == 2 ? 12 : (NV) == 3 ? 8 : 6)
#define CH 48 /* blocks per chunk (a multiple of every RT): transformed inputs stay in L2 */
#define MAXV 4 /* at most 64 channels in and out */

static inline __mmask16 lane_mask(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

/* exp(-q) / (1 + exp(-q)) from correctly rounded steps and one fixed polynomial: the same bits
   in every lane and every call. Accuracy about 1e-7, like the library sigmoid. */
AI __m512 sigmoid16(__m512 q) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_sub_ps(_mm512_setzero_ps(), q);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-80.0f)), _mm512_set1_ps(80.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.4426950408889634f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, _mm512_mul_ps(n, _mm512_set1_ps(0.693145751953125f)));
    f = _mm512_sub_ps(f, _mm512_mul_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f)));
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, one);
    p = _mm512_fmadd_ps(p, f, one);
    return _mm512_div_ps(one, _mm512_add_ps(one, _mm512_scalef_ps(p, n)));
}

/* V = B^T d B for one 16-channel slice of a 4x4 window (d[row][column]). */
AI void input_transform(const __m512 d[4][4], float* v, size_t stride) {
    __m512 t[4][4];
    for (int j = 0; j < 4; j++) {
        t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) {
        _mm512_storeu_ps(v + (size_t)(i * 4 + 0) * stride, _mm512_sub_ps(t[i][0], t[i][2]));
        _mm512_storeu_ps(v + (size_t)(i * 4 + 1) * stride, _mm512_add_ps(t[i][1], t[i][2]));
        _mm512_storeu_ps(v + (size_t)(i * 4 + 2) * stride, _mm512_sub_ps(t[i][2], t[i][1]));
        _mm512_storeu_ps(v + (size_t)(i * 4 + 3) * stride, _mm512_sub_ps(t[i][1], t[i][3]));
    }
}

/* One transform point: M[r][:] = sum over c of V[r][c] * U[c][:], for NR blocks. */
#define DEFINE_GEMM(NAME, NR, NV)                                                                    \
    AI void NAME(const float* V, int cinp, int cin, const float* U, float* M, int co) {             \
        __m512 acc[NR][NV];                                                                          \
        for (int r = 0; r < NR; r++)                                                                 \
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();                            \
        for (int c = 0; c < cin; c++) {                                                              \
            __m512 u[NV];                                                                            \
            for (int v = 0; v < NV; v++) u[v] = _mm512_loadu_ps(U + (size_t)c * co + 16 * v);        \
            for (int r = 0; r < NR; r++) {                                                           \
                __m512 b = _mm512_set1_ps(V[(size_t)r * cinp + c]);                                  \
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(b, u[v], acc[r][v]);        \
            }                                                                                        \
        }                                                                                            \
        for (int r = 0; r < NR; r++)                                                                 \
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(M + (size_t)r * co + 16 * v, acc[r][v]);  \
    }

#define DEFINE_ROWS(NV)                                                                              \
    DEFINE_GEMM(gemm_##NV##_r, RT(NV), NV)                                                               \
    DEFINE_GEMM(gemm_##NV##_1, 1, NV)                                                                \
    static void rows_##NV(const float* x, int H, int W, int cin, const float* U, const float* bias,  \
                          int cout, float* out, int ty0, int ty1, int act, float slope,              \
                          const float* other, int other_op, float* work) {                           \
        const int cinp = (cin + 15) / 16 * 16, nk = cinp / 16, co = NV * 16, TW = (W + 1) / 2;     \
        /* V: [16][CH][cinp], M: [16][CH][co], each point's slice padded by one cache line: */      \
        /* without it the 16 slices sit a multiple of 4 KiB apart and fight over one L1 set */     \
        const size_t vs = (size_t)CH * cinp + 16, ms = (size_t)CH * co + 16;                         \
        float* V = work;                                                                             \
        float* M = work + 16 * vs;                                                                   \
        const __m512 s = _mm512_set1_ps(slope), z = _mm512_setzero_ps();                             \
        for (int ty = ty0; ty < ty1; ty++) {                                                         \
            for (int tx0 = 0; tx0 < TW; tx0 += CH) {                                                 \
                const int nr = TW - tx0 < CH ? TW - tx0 : CH;                                        \
                for (int r = 0; r < nr; r++) {                                                       \
                    const int y0 = 2 * ty - 1, x0 = 2 * (tx0 + r) - 1;                               \
                    const int inside = y0 >= 0 && y0 + 4 <= H && x0 >= 0 && x0 + 4 <= W;             \
                    for (int k = 0; k < nk; k++) {                                                   \
                        const __mmask16 m = lane_mask(cin - 16 * k);                                 \
                        __m512 d[4][4];                                                              \
                        for (int i = 0; i < 4; i++)                                                  \
                            for (int j = 0; j < 4; j++) {                                            \
                                const int yy = y0 + i, xx = x0 + j;                                  \
                                d[i][j] = (inside || (yy >= 0 && yy < H && xx >= 0 && xx < W))       \
                                    ? _mm512_maskz_loadu_ps(m, x + ((size_t)yy * W + xx) * cin + 16 * k) \
                                    : z;                                                             \
                            }                                                                        \
                        input_transform(d, V + (size_t)r * cinp + 16 * k, vs);                       \
                    }                                                                                \
                }                                                                                    \
                for (int a = 0; a < 16; a++) {                                                       \
                    const float* Va = V + (size_t)a * vs;                                            \
                    const float* Ua = U + (size_t)a * cinp * co;                                     \
                    float* Ma = M + (size_t)a * ms;                                                  \
                    int r = 0;                                                                       \
                    for (; r + RT(NV) <= nr; r += RT(NV))                                                    \
                        gemm_##NV##_r(Va + (size_t)r * cinp, cinp, cin, Ua, Ma + (size_t)r * co, co); \
                    for (; r < nr; r++)                                                              \
                        gemm_##NV##_1(Va + (size_t)r * cinp, cinp, cin, Ua, Ma + (size_t)r * co, co); \
                }                                                                                    \
                /* Y = A^T M A with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], then the epilogue */      \
                for (int r = 0; r < nr; r++) {                                                       \
                    const int oy = 2 * ty, ox = 2 * (tx0 + r);                                       \
                    for (int v = 0; v < NV; v++) {                                                   \
                        __m512 mm[4][4], t0[4], t1[4], y[2][2];                                      \
                        for (int i = 0; i < 4; i++)                                                  \
                            for (int j = 0; j < 4; j++)                                              \
                                mm[i][j] = _mm512_loadu_ps(M + (size_t)(i * 4 + j) * ms + (size_t)r * co + 16 * v); \
                        for (int j = 0; j < 4; j++) {                                                \
                            t0[j] = _mm512_add_ps(_mm512_add_ps(mm[0][j], mm[1][j]), mm[2][j]);      \
                            t1[j] = _mm512_sub_ps(_mm512_sub_ps(mm[1][j], mm[2][j]), mm[3][j]);      \
                        }                                                                            \
                        y[0][0] = _mm512_add_ps(_mm512_add_ps(t0[0], t0[1]), t0[2]);                 \
                        y[0][1] = _mm512_sub_ps(_mm512_sub_ps(t0[1], t0[2]), t0[3]);                 \
                        y[1][0] = _mm512_add_ps(_mm512_add_ps(t1[0], t1[1]), t1[2]);                 \
                        y[1][1] = _mm512_sub_ps(_mm512_sub_ps(t1[1], t1[2]), t1[3]);                 \
                        const __mmask16 m = lane_mask(cout - 16 * v);                                \
                        const __m512 b = _mm512_maskz_loadu_ps(m, bias + 16 * v);                    \
                        for (int i = 0; i < 2; i++)                                                  \
                            for (int j = 0; j < 2; j++) {                                            \
                                if (oy + i >= H || ox + j >= W) continue;                            \
                                const size_t off = ((size_t)(oy + i) * W + ox + j) * cout + 16 * v;  \
                                __m512 q = _mm512_add_ps(y[i][j], b);                                \
                                if (other_op == 1) q = _mm512_add_ps(q, _mm512_maskz_loadu_ps(m, other + off)); \
                                if (act == 1)                                                        \
                                    q = _mm512_mask_mul_ps(q, _mm512_cmp_ps_mask(q, z, _CMP_LT_OQ), q, s); \
                                else if (act == 2)                                                   \
                                    q = sigmoid16(q);                                                \
                                if (other_op == 2) q = _mm512_mul_ps(q, _mm512_maskz_loadu_ps(m, other + off)); \
                                _mm512_mask_storeu_ps(out + off, m, q);                              \
                            }                                                                        \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }

DEFINE_ROWS(1)
DEFINE_ROWS(2)
DEFINE_ROWS(3)
DEFINE_ROWS(4)

#pragma GCC pop_options

/* ------------------------------------------------------------------------------------------ */
/* AVX2 + FMA: 8 lanes and 16 registers, so the GEMM walks the output channels 16 at a time.  */

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#define RT8 6 /* 6 blocks x 2 vectors = 12 accumulators of the 16 registers */

static inline __m256i mask8(int n) {
    static const int table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i*)(table + 8 - n));
}

AI __m256 load8(int n, const float* p) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask8(n));
}

AI void store8(int n, float* p, __m256 v) {
    if (n >= 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, mask8(n), v);
}

/* The sigmoid of sigmoid16, with 2^n built from the exponent bits (exact for |n| <= 116). */
AI __m256 sigmoid8(__m256 q) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_sub_ps(_mm256_setzero_ps(), q);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-80.0f)), _mm256_set1_ps(80.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.4426950408889634f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(t, _mm256_mul_ps(n, _mm256_set1_ps(0.693145751953125f)));
    f = _mm256_sub_ps(f, _mm256_mul_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f)));
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, f, one);
    p = _mm256_fmadd_ps(p, f, one);
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

AI void input_transform8(const __m256 d[4][4], float* v, size_t stride) {
    __m256 t[4][4];
    for (int j = 0; j < 4; j++) {
        t[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(v + (size_t)(i * 4 + 0) * stride, _mm256_sub_ps(t[i][0], t[i][2]));
        _mm256_storeu_ps(v + (size_t)(i * 4 + 1) * stride, _mm256_add_ps(t[i][1], t[i][2]));
        _mm256_storeu_ps(v + (size_t)(i * 4 + 2) * stride, _mm256_sub_ps(t[i][2], t[i][1]));
        _mm256_storeu_ps(v + (size_t)(i * 4 + 3) * stride, _mm256_sub_ps(t[i][1], t[i][3]));
    }
}

#define DEFINE_GEMM8(NAME, NR, NV)                                                                   \
    AI void NAME(const float* V, int cinp, int cin, const float* U, float* M, int co) {             \
        __m256 acc[NR][NV];                                                                          \
        for (int r = 0; r < NR; r++)                                                                 \
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();                            \
        for (int c = 0; c < cin; c++) {                                                              \
            __m256 u[NV];                                                                            \
            for (int v = 0; v < NV; v++) u[v] = _mm256_loadu_ps(U + (size_t)c * co + 8 * v);         \
            for (int r = 0; r < NR; r++) {                                                           \
                __m256 b = _mm256_broadcast_ss(V + (size_t)r * cinp + c);                            \
                for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(b, u[v], acc[r][v]);        \
            }                                                                                        \
        }                                                                                            \
        for (int r = 0; r < NR; r++)                                                                 \
            for (int v = 0; v < NV; v++) _mm256_storeu_ps(M + (size_t)r * co + 8 * v, acc[r][v]);   \
    }

DEFINE_GEMM8(gemm8_2r, RT8, 2)
DEFINE_GEMM8(gemm8_21, 1, 2)
DEFINE_GEMM8(gemm8_1r, RT8, 1)
DEFINE_GEMM8(gemm8_11, 1, 1)

static void rows8(const float* x, int H, int W, int cin, const float* U, const float* bias, int cout,
                  float* out, int ty0, int ty1, int act, float slope, const float* other, int other_op,
                  float* work) {
    const int cinp = (cin + 7) / 8 * 8, nk = cinp / 8, co = (cout + 7) / 8 * 8, TW = (W + 1) / 2;
    const size_t vs = (size_t)CH * cinp + 16, ms = (size_t)CH * co + 16; /* see rows_NV */
    float* V = work;
    float* M = work + 16 * vs;
    const __m256 s = _mm256_set1_ps(slope), z = _mm256_setzero_ps();
    for (int ty = ty0; ty < ty1; ty++) {
        for (int tx0 = 0; tx0 < TW; tx0 += CH) {
            const int nr = TW - tx0 < CH ? TW - tx0 : CH;
            for (int r = 0; r < nr; r++) {
                const int y0 = 2 * ty - 1, x0 = 2 * (tx0 + r) - 1;
                const int inside = y0 >= 0 && y0 + 4 <= H && x0 >= 0 && x0 + 4 <= W;
                for (int k = 0; k < nk; k++) {
                    const int n = cin - 8 * k;
                    __m256 d[4][4];
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            const int yy = y0 + i, xx = x0 + j;
                            d[i][j] = (inside || (yy >= 0 && yy < H && xx >= 0 && xx < W))
                                          ? load8(n, x + ((size_t)yy * W + xx) * cin + 8 * k)
                                          : z;
                        }
                    input_transform8(d, V + (size_t)r * cinp + 8 * k, vs);
                }
            }
            for (int a = 0; a < 16; a++) {
                const float* Va = V + (size_t)a * vs;
                const float* Ua = U + (size_t)a * cinp * co;
                float* Ma = M + (size_t)a * ms;
                for (int o = 0; o < co; o += 16) {
                    const int two = o + 16 <= co;
                    int r = 0;
                    for (; r + RT8 <= nr; r += RT8) {
                        if (two)
                            gemm8_2r(Va + (size_t)r * cinp, cinp, cin, Ua + o, Ma + (size_t)r * co + o, co);
                        else
                            gemm8_1r(Va + (size_t)r * cinp, cinp, cin, Ua + o, Ma + (size_t)r * co + o, co);
                    }
                    for (; r < nr; r++) {
                        if (two)
                            gemm8_21(Va + (size_t)r * cinp, cinp, cin, Ua + o, Ma + (size_t)r * co + o, co);
                        else
                            gemm8_11(Va + (size_t)r * cinp, cinp, cin, Ua + o, Ma + (size_t)r * co + o, co);
                    }
                }
            }
            for (int r = 0; r < nr; r++) {
                const int oy = 2 * ty, ox = 2 * (tx0 + r);
                for (int v = 0; v < co / 8; v++) {
                    __m256 t0[4], t1[4], y[2][2];
                    for (int j = 0; j < 4; j++) {
                        const float* mj = M + (size_t)j * ms + (size_t)r * co + 8 * v;
                        const __m256 m0 = _mm256_loadu_ps(mj), m1 = _mm256_loadu_ps(mj + 4 * ms);
                        const __m256 m2 = _mm256_loadu_ps(mj + 8 * ms), m3 = _mm256_loadu_ps(mj + 12 * ms);
                        t0[j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                        t1[j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
                    }
                    y[0][0] = _mm256_add_ps(_mm256_add_ps(t0[0], t0[1]), t0[2]);
                    y[0][1] = _mm256_sub_ps(_mm256_sub_ps(t0[1], t0[2]), t0[3]);
                    y[1][0] = _mm256_add_ps(_mm256_add_ps(t1[0], t1[1]), t1[2]);
                    y[1][1] = _mm256_sub_ps(_mm256_sub_ps(t1[1], t1[2]), t1[3]);
                    const int n = cout - 8 * v;
                    const __m256 b = load8(n, bias + 8 * v);
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            if (oy + i >= H || ox + j >= W) continue;
                            const size_t off = ((size_t)(oy + i) * W + ox + j) * cout + 8 * v;
                            __m256 q = _mm256_add_ps(y[i][j], b);
                            if (other_op == 1) q = _mm256_add_ps(q, load8(n, other + off));
                            if (act == 1)
                                q = _mm256_blendv_ps(q, _mm256_mul_ps(q, s), _mm256_cmp_ps(q, z, _CMP_LT_OQ));
                            else if (act == 2)
                                q = sigmoid8(q);
                            if (other_op == 2) q = _mm256_mul_ps(q, load8(n, other + off));
                            store8(n, out + off, q);
                        }
                }
            }
        }
    }
}

#pragma GCC pop_options

/* Vector width in floats of each build: 16 (AVX-512) or 8 (AVX2). */
static int lanes_of(int isa) { return isa == 512 ? 16 : 8; }

/* Floats of scratch one thread needs for a call with these channel counts. */
long fmen_wino_work_floats(int cin, int cout, int isa) {
    const long l = lanes_of(isa), cinp = (cin + l - 1) / l * l, co = (cout + l - 1) / l * l;
    return 16L * (CH * (cinp + co) + 32);
}

/* 0 on success, -1 for arguments this kernel does not take. isa: 512 (AVX-512) or 256 (AVX2),
   chosen by the caller from the CPU. The rows of 2x2 blocks are shared between nthreads OpenMP
   threads; loaded into a process that already uses libgomp (PyTorch does), these are PyTorch's
   own worker threads, so nobody spins while the other works. work holds
   nthreads * fmen_wino_work_floats() floats. */
int fmen_wino_conv3x3(const float* x, int H, int W, int cin, const float* U, const float* bias,
                      int cout, float* out, int act, float slope, const float* other, int other_op,
                      float* work, int nthreads, int isa) {
    if (cin < 1 || cin > 16 * MAXV || cout < 1 || cout > 16 * MAXV || H < 1 || W < 1 || nthreads < 1 ||
        (isa != 512 && isa != 256))
        return -1;
    const int rows = (H + 1) / 2;
    const long per = fmen_wino_work_floats(cin, cout, isa);
    if (nthreads > rows) nthreads = rows;
#pragma omp parallel num_threads(nthreads)
    {
        int n = omp_get_num_threads(), i = omp_get_thread_num();
        int ty0 = (int)((long)rows * i / n), ty1 = (int)((long)rows * (i + 1) / n);
        float* w = work + per * i;
        if (isa == 256)
            rows8(x, H, W, cin, U, bias, cout, out, ty0, ty1, act, slope, other, other_op, w);
        else
            switch ((cout + 15) / 16) {
                case 1: rows_1(x, H, W, cin, U, bias, cout, out, ty0, ty1, act, slope, other, other_op, w); break;
                case 2: rows_2(x, H, W, cin, U, bias, cout, out, ty0, ty1, act, slope, other, other_op, w); break;
                case 3: rows_3(x, H, W, cin, U, bias, cout, out, ty0, ty1, act, slope, other, other_op, w); break;
                default: rows_4(x, H, W, cin, U, bias, cout, out, ty0, ty1, act, slope, other, other_op, w); break;
            }
    }
    return 0;
}
