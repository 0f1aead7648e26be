/* The synthetic clip: everything that does not move is computed once, so a
 * frame costs a shifted copy of the tissue, a few small glints and the
 * instruments' own pixels. Colours are BT.601 limited range, as in H.264
 * sources. */
#include "io/synth.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixfmt.h>

#define MAX_SIDE 8192
#define MAX_TOOLS 2
#define MAX_GLINTS 32
#define MAX_PARTS 8
#define NOISE_TILE 256 /* sensor noise tile, a power of two */
#define LUT_SIZE 256   /* shading across an instrument */
#define TWO_PI 6.283185307179586

struct glint {
    double x, y;   /* in tissue texture coordinates */
    double rx, ry; /* radii */
    double angle;
    double wobble, freq, phase;
};

struct tool {
    double pivot_x, pivot_y; /* the trocar, outside the view */
    double tip_x, tip_y;     /* mean tip position */
    double amp_x, amp_y, freq_x, freq_y, phase_x, phase_y;
    double hw; /* shaft half width at the tip */
    double jaw_freq, jaw_phase;
};

/* One convex piece of an instrument: a quad around an axis, its width
 * varying linearly from one end to the other. */
struct part {
    double x0, y0, x1, y1;
    double hw0, hw1;
    const uint8_t *lut;
    int serrated;
};

struct mms_synth {
    struct mms_synth_info info;
    double fps;
    int margin; /* how far the tissue drifts, even */
    int tw, th; /* texture size: the frame plus the margin on each side */
    uint8_t *tex_y, *tex_u, *tex_v;
    uint16_t *light, *light_c; /* vignette x scope coverage, Q8 */
    uint8_t *cover;            /* scope coverage 0..255 */
    int8_t *noise;
    uint8_t *alpha;     /* instruments, per frame; zero between frames */
    int *span0, *span1; /* per row: the columns instruments touched */
    uint8_t lut_shaft[LUT_SIZE], lut_jaw[LUT_SIZE], lut_ring[LUT_SIZE];
    int ntools, nglints;
    struct tool tools[MAX_TOOLS];
    struct glint glints[MAX_GLINTS];
    uint32_t seed;
};

/* ---- randomness ---- */

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static uint32_t hash3(int a, int b, uint32_t seed)
{
    return hash32(seed ^ hash32((uint32_t)a * 0x9e3779b1u ^ hash32((uint32_t)b + 0x632be5abu)));
}

struct rng {
    uint64_t state;
};

static double uniform(struct rng *r, double lo, double hi)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) / (double)(1ull << 53);
}

/* ---- tissue ---- */

static float lattice(int x, int y, uint32_t seed)
{
    return (float)(hash3(x, y, seed) >> 8) * (1.0f / 16777216.0f);
}

/* Value noise: smooth, cheap, and its level sets make good vessels. */
static float vnoise(float x, float y, uint32_t seed)
{
    float fx = floorf(x), fy = floorf(y);
    int ix = (int)fx, iy = (int)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    float a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed);
    float c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed);
    float top = a + (b - a) * tx, bottom = c + (d - c) * tx;
    return top + (bottom - top) * ty;
}

static float fbm(float x, float y, int octaves, uint32_t seed)
{
    float sum = 0, amp = 0.5f, norm = 0;
    for (int k = 0; k < octaves; k++) {
        sum += amp * vnoise(x, y, seed + 101u * k);
        norm += amp;
        x = x * 2.03f + 17.1f;
        y = y * 2.03f - 9.7f;
        amp *= 0.5f;
    }
    return sum / norm;
}

static float smoothstep(float e0, float e1, float x)
{
    float t = (x - e0) / (e1 - e0);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

static float mixf(float a, float b, float t)
{
    return a + (b - a) * t;
}

/* A thin line along the 0.5 level of a warped noise field. */
static float vessel(float x, float y, float scale, float width, uint32_t seed)
{
    float wx = fbm(x * scale * 0.5f, y * scale * 0.5f, 2, seed + 7) - 0.5f;
    float wy = fbm(x * scale * 0.5f + 31, y * scale * 0.5f, 2, seed + 9) - 0.5f;
    float n = fbm(x * scale + wx * 2.5f, y * scale + wy * 2.5f, 3, seed);
    return 1 - smoothstep(0, width, fabsf(n - 0.5f));
}

static void tissue_rgb(float x, float y, float unit, uint32_t seed, float rgb[3])
{
    float u = 1 / unit; /* features keep their size in the picture */
    float folds = fbm(x * u / 260, y * u / 260, 5, seed + 1);
    float fat = smoothstep(0.56f, 0.68f, fbm(x * u / 330, y * u / 330, 4, seed + 2));
    float big = vessel(x * u, y * u, 1 / 210.0f, 0.018f, seed + 3);
    float small = vessel(x * u, y * u, 1 / 70.0f, 0.022f, seed + 4);
    float grain = fbm(x * u / 6, y * u / 6, 2, seed + 5);

    float b = smoothstep(0.25f, 0.75f, folds);
    float r = mixf(0.42f, 0.90f, b), g = mixf(0.10f, 0.42f, b), bl = mixf(0.11f, 0.40f, b);
    r = mixf(r, 0.93f, fat * 0.75f);
    g = mixf(g, 0.76f * (0.6f + 0.4f * b), fat * 0.75f);
    bl = mixf(bl, 0.42f * (0.6f + 0.4f * b), fat * 0.75f);
    float v = fmaxf(big * 0.85f, small * 0.3f) * (1 - fat * 0.6f);
    r = mixf(r, 0.45f, v);
    g = mixf(g, 0.04f, v);
    bl = mixf(bl, 0.09f, v);
    float gr = 0.92f + 0.16f * grain;
    rgb[0] = fminf(1, r * gr);
    rgb[1] = fminf(1, g * gr);
    rgb[2] = fminf(1, bl * gr);
}

static uint8_t clamp8(double v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)lrint(v);
}

static void make_tissue(struct mms_synth *s)
{
    float unit = fminf(s->info.width, s->info.height) / 720.0f;
    int cw = s->tw / 2;
    for (int y = 0; y < s->th; y += 2) {
        for (int x = 0; x < s->tw; x += 2) {
            float sum[3] = {0, 0, 0};
            for (int k = 0; k < 4; k++) {
                int px = x + (k & 1), py = y + (k >> 1);
                float c[3];
                tissue_rgb((float)px, (float)py, unit, s->seed, c);
                s->tex_y[(size_t)py * s->tw + px] =
                    clamp8(16 + 65.481 * c[0] + 128.553 * c[1] + 24.966 * c[2]);
                for (int i = 0; i < 3; i++)
                    sum[i] += c[i] / 4;
            }
            size_t ci = (size_t)(y / 2) * cw + x / 2;
            s->tex_u[ci] = clamp8(128 - 37.797 * sum[0] - 74.203 * sum[1] + 112.0 * sum[2]);
            s->tex_v[ci] = clamp8(128 + 112.0 * sum[0] - 93.786 * sum[1] - 18.214 * sum[2]);
        }
    }
}

/* The scope's light falls off towards the rim; outside it, black. */
static void make_light(struct mms_synth *s)
{
    const struct mms_synth_info *in = &s->info;
    for (int y = 0; y < in->height; y++)
        for (int x = 0; x < in->width; x++) {
            double d = hypot(x + 0.5 - in->cx, y + 0.5 - in->cy);
            double cov = fmin(1, fmax(0, in->radius - d + 0.5));
            double q = d / in->radius;
            double fall = 1 - 0.55 * q * q;
            size_t i = (size_t)y * in->width + x;
            s->cover[i] = clamp8(cov * 255);
            s->light[i] = (uint16_t)lrint(256 * fmax(0, fall) * cov);
        }
    int cw = in->width / 2;
    for (int y = 0; y < in->height / 2; y++)
        for (int x = 0; x < cw; x++) {
            const uint16_t *l = s->light + (size_t)2 * y * in->width + 2 * x;
            s->light_c[(size_t)y * cw + x] =
                (uint16_t)((l[0] + l[1] + l[in->width] + l[in->width + 1] + 2) / 4);
        }
}

static void make_noise(struct mms_synth *s)
{
    for (int i = 0; i < NOISE_TILE * NOISE_TILE; i++) {
        uint32_t h = hash3(i, 77, s->seed);
        /* Sum of two dice: a rough bell, -3..3. */
        s->noise[i] = (int8_t)((int)(h & 3) + (int)((h >> 8) & 3) - 3);
    }
}

/* Brushed metal seen down the scope's light: a cylinder lit from the
 * camera, with a bright streak off the axis. */
static void make_lut(uint8_t *lut, double dark, double bright, double shine)
{
    for (int i = 0; i < LUT_SIZE; i++) {
        double s = (i + 0.5) / LUT_SIZE * 2 - 1;
        double nz = sqrt(fmax(0, 1 - s * s));
        double diffuse = fmax(0, 0.25 * s + 0.97 * nz);
        double h = fmax(0, 0.45 * s + 0.89 * nz);
        double spec = pow(h, 40);
        lut[i] = clamp8(dark + (bright - dark) * diffuse + shine * spec);
    }
}

/* ---- moving things ---- */

static void place_tools(struct mms_synth *s, struct rng *r)
{
    const struct mms_synth_info *in = &s->info;
    double unit = fmin(in->width, in->height) / 720.0;
    s->ntools = uniform(r, 0, 1) < 0.35 ? 1 : 2;
    double first = uniform(r, 0, TWO_PI);
    for (int k = 0; k < s->ntools; k++) {
        struct tool *t = &s->tools[k];
        /* A second tool comes from roughly the other side, as in surgery. */
        double side = k ? first + M_PI + uniform(r, -0.9, 0.9) : first;
        double dist = uniform(r, 1.55, 1.8) * in->radius;
        t->pivot_x = in->cx + cos(side) * dist;
        t->pivot_y = in->cy + sin(side) * dist;
        double reach = uniform(r, 0.0, 0.25) * in->radius;
        t->tip_x = in->cx + cos(side) * reach;
        t->tip_y = in->cy + sin(side) * reach;
        t->amp_x = uniform(r, 0.18, 0.28) * in->radius;
        t->amp_y = uniform(r, 0.12, 0.22) * in->radius;
        t->freq_x = uniform(r, 1 / 9.0, 1 / 5.0); /* per second */
        t->freq_y = uniform(r, 1 / 8.0, 1 / 4.5);
        t->phase_x = uniform(r, 0, TWO_PI);
        t->phase_y = uniform(r, 0, TWO_PI);
        t->hw = uniform(r, 24, 32) * unit;
        t->jaw_freq = uniform(r, 1 / 4.0, 1 / 2.0);
        t->jaw_phase = uniform(r, 0, TWO_PI);
    }
}

static void place_glints(struct mms_synth *s, struct rng *r)
{
    double unit = fmin(s->info.width, s->info.height) / 720.0;
    s->nglints = (int)uniform(r, 18, MAX_GLINTS);
    for (int i = 0; i < s->nglints; i++) {
        struct glint *g = &s->glints[i];
        g->x = uniform(r, 0, s->tw);
        g->y = uniform(r, 0, s->th);
        g->rx = uniform(r, 3, 13) * unit;
        g->ry = g->rx * uniform(r, 0.35, 0.8);
        g->angle = uniform(r, 0, M_PI);
        g->wobble = uniform(r, 1, 4) * unit;
        g->freq = uniform(r, 0.3, 1.2);
        g->phase = uniform(r, 0, TWO_PI);
    }
}

/* Breathing: the tissue drifts slowly by whole chroma pixels. */
static void drift(const struct mms_synth *s, double t, int *ox, int *oy)
{
    double a = s->margin / 2 * 0.9;
    double fx = sin(TWO_PI * t / 4.1 + (s->seed & 255)) * 0.7 + sin(TWO_PI * t / 9.3) * 0.3;
    double fy = sin(TWO_PI * t / 4.1 + 1.3) * 0.8 + sin(TWO_PI * t / 7.7 + 2.1) * 0.2;
    *ox = 2 * (int)lrint(s->margin / 2 + a * fx);
    *oy = 2 * (int)lrint(s->margin / 2 + a * fy);
}

/* ---- drawing ---- */

static void draw_tissue(struct mms_synth *s, AVFrame *f, int index, int ox, int oy)
{
    int w = s->info.width, h = s->info.height;
    uint32_t nh = hash3(index, 991, s->seed);
    int nx = nh & (NOISE_TILE - 1), ny = (nh >> 8) & (NOISE_TILE - 1);
    for (int y = 0; y < h; y++) {
        const uint8_t *t = s->tex_y + (size_t)(y + oy) * s->tw + ox;
        const uint16_t *l = s->light + (size_t)y * w;
        const int8_t *n = s->noise + ((y + ny) & (NOISE_TILE - 1)) * NOISE_TILE;
        uint8_t *d = f->data[0] + (size_t)y * f->linesize[0];
        for (int x = 0; x < w; x++) {
            int v = 16 + (((t[x] - 16) * l[x]) >> 8) + n[(x + nx) & (NOISE_TILE - 1)];
            d[x] = (uint8_t)(v < 16 ? 16 : v > 235 ? 235 : v);
        }
    }
    int cw = w / 2, ctw = s->tw / 2;
    for (int p = 1; p <= 2; p++) {
        const uint8_t *tex = p == 1 ? s->tex_u : s->tex_v;
        for (int y = 0; y < h / 2; y++) {
            const uint8_t *t = tex + (size_t)(y + oy / 2) * ctw + ox / 2;
            const uint16_t *l = s->light_c + (size_t)y * cw;
            uint8_t *d = f->data[p] + (size_t)y * f->linesize[p];
            for (int x = 0; x < cw; x++)
                d[x] = (uint8_t)(128 + (((t[x] - 128) * l[x]) >> 8));
        }
    }
}

/* Wet surfaces catch the light: small white ellipses that twinkle. */
static void draw_glint(struct mms_synth *s, AVFrame *f, const struct glint *g, double t,
                       int ox, int oy)
{
    int w = s->info.width, h = s->info.height;
    double gx = g->x - ox + g->wobble * sin(TWO_PI * g->freq * t + g->phase);
    double gy = g->y - oy + g->wobble * cos(TWO_PI * g->freq * 0.7 * t + g->phase);
    double strength = 0.75 + 0.25 * sin(TWO_PI * g->freq * 1.7 * t + 2 * g->phase);
    double ca = cos(g->angle), sa = sin(g->angle);
    int x0 = (int)floor(gx - g->rx) & ~1, x1 = (int)ceil(gx + g->rx) | 1;
    int y0 = (int)floor(gy - g->rx) & ~1, y1 = (int)ceil(gy + g->rx) | 1;
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= w ? w - 1 : x1;
    y1 = y1 >= h ? h - 1 : y1;
    for (int y = y0; y <= y1; y++) {
        uint8_t *d = f->data[0] + (size_t)y * f->linesize[0];
        for (int x = x0; x <= x1; x++) {
            double dx = x + 0.5 - gx, dy = y + 0.5 - gy;
            double u = (dx * ca + dy * sa) / g->rx, v = (-dx * sa + dy * ca) / g->ry;
            double q = 1 - (u * u + v * v);
            if (q <= 0)
                continue;
            double a = strength * fmin(1, q * 1.6) * s->cover[(size_t)y * w + x] / 255;
            d[x] = (uint8_t)lrint(d[x] + (235 - d[x]) * a);
        }
    }
    /* Highlights are white: chroma goes grey where they are bright. */
    for (int y = y0 / 2; y <= y1 / 2; y++)
        for (int x = x0 / 2; x <= x1 / 2; x++) {
            double dx = 2 * x + 1 - gx, dy = 2 * y + 1 - gy;
            double u = (dx * ca + dy * sa) / g->rx, v = (-dx * sa + dy * ca) / g->ry;
            double q = 1 - (u * u + v * v);
            if (q <= 0)
                continue;
            double a = strength * fmin(1, q * 1.6);
            for (int p = 1; p <= 2; p++) {
                uint8_t *c = f->data[p] + (size_t)y * f->linesize[p] + x;
                *c = (uint8_t)lrint(*c + (128 - *c) * a);
            }
        }
}

/* A quad's four edges as unit outward normals n and offsets c: a point p
 * is inside when n.p <= c for all four, and max(n.p - c) is its signed
 * distance to the outline (exact inside, close enough just outside). */
struct quad {
    double nx[4], ny[4], c[4];
    double ax, ay, len; /* unit axis, length */
    double px, py;      /* unit perpendicular */
};

static void quad_of(const struct part *pt, struct quad *q)
{
    double dx = pt->x1 - pt->x0, dy = pt->y1 - pt->y0;
    q->len = hypot(dx, dy);
    q->ax = dx / q->len;
    q->ay = dy / q->len;
    q->px = -q->ay;
    q->py = q->ax;
    double vx[4] = {pt->x0 + q->px * pt->hw0, pt->x1 + q->px * pt->hw1,
                    pt->x1 - q->px * pt->hw1, pt->x0 - q->px * pt->hw0};
    double vy[4] = {pt->y0 + q->py * pt->hw0, pt->y1 + q->py * pt->hw1,
                    pt->y1 - q->py * pt->hw1, pt->y0 - q->py * pt->hw0};
    /* Outward for this winding is the edge direction turned right; the
     * sign is checked against the centre, so either winding works. */
    double cx = (pt->x0 + pt->x1) / 2, cy = (pt->y0 + pt->y1) / 2;
    for (int i = 0; i < 4; i++) {
        int j = (i + 1) & 3;
        double ex = vx[j] - vx[i], ey = vy[j] - vy[i], el = hypot(ex, ey);
        double nx = ey / el, ny = -ex / el;
        double c = nx * vx[i] + ny * vy[i];
        if (nx * cx + ny * cy > c) {
            nx = -nx;
            ny = -ny;
            c = -c;
        }
        q->nx[i] = nx;
        q->ny[i] = ny;
        q->c[i] = c;
    }
}

/* The columns of row y whose centres lie within one pixel of the quad. */
static int row_span(const struct quad *q, double yc, int w, int *x0, int *x1)
{
    double lo = -1e30, hi = 1e30;
    for (int i = 0; i < 4; i++) {
        double rest = q->c[i] + 1 - q->ny[i] * yc; /* nx * xc <= rest */
        if (fabs(q->nx[i]) < 1e-12) {
            if (rest < 0)
                return 0;
        } else if (q->nx[i] > 0) {
            hi = fmin(hi, rest / q->nx[i]);
        } else {
            lo = fmax(lo, rest / q->nx[i]);
        }
    }
    lo = fmax(lo - 0.5, 0);
    hi = fmin(hi - 0.5, w - 1);
    if (lo > hi)
        return 0;
    *x0 = (int)ceil(lo);
    *x1 = (int)floor(hi);
    return *x0 <= *x1;
}

static void draw_part(struct mms_synth *s, AVFrame *f, const struct part *pt)
{
    int w = s->info.width, h = s->info.height;
    struct quad q;
    quad_of(pt, &q);
    double ymin = fmin(pt->y0, pt->y1) - fmax(pt->hw0, pt->hw1) - 1;
    double ymax = fmax(pt->y0, pt->y1) + fmax(pt->hw0, pt->hw1) + 1;
    int y0 = ymin < 0 ? 0 : (int)ymin, y1 = ymax > h - 1 ? h - 1 : (int)ymax;
    for (int y = y0; y <= y1; y++) {
        double yc = y + 0.5;
        int x0, x1;
        if (!row_span(&q, yc, w, &x0, &x1))
            continue;
        s->span0[y] = x0 < s->span0[y] ? x0 : s->span0[y];
        s->span1[y] = x1 > s->span1[y] ? x1 : s->span1[y];
        uint8_t *d = f->data[0] + (size_t)y * f->linesize[0];
        uint8_t *al = s->alpha + (size_t)y * w;
        const uint16_t *l = s->light + (size_t)y * w;
        for (int x = x0; x <= x1; x++) {
            double xc = x + 0.5, dist = -1e30;
            for (int i = 0; i < 4; i++)
                dist = fmax(dist, q.nx[i] * xc + q.ny[i] * yc - q.c[i]);
            double a = 0.5 - dist;
            if (a <= 0)
                continue;
            a = a > 1 ? 1 : a;
            double rx = xc - pt->x0, ry = yc - pt->y0;
            double along = (rx * q.ax + ry * q.ay) / q.len;
            double across = (rx * q.px + ry * q.py) / (pt->hw0 + (pt->hw1 - pt->hw0) * along);
            int li = (int)((across + 1) * (LUT_SIZE / 2));
            li = li < 0 ? 0 : li >= LUT_SIZE ? LUT_SIZE - 1 : li;
            int lum = pt->lut[li];
            if (pt->serrated && ((int)(along * q.len / 3) & 1))
                lum -= 10;
            lum = 16 + (((lum - 16) * l[x]) >> 8);
            d[x] = (uint8_t)lrint(d[x] + (lum - d[x]) * a);
            int ai = (int)lrint(a * 255);
            al[x] = (uint8_t)(al[x] + (255 - al[x]) * ai / 255);
        }
    }
}

/* Where tool k is at time t: a shaft from the trocar to the tip, an
 * insulation ring behind the hinge, and two jaws that open and close. */
static int tool_parts(const struct mms_synth *s, const struct tool *t, double time,
                      struct part *parts)
{
    double tx = t->tip_x + t->amp_x * sin(TWO_PI * t->freq_x * time + t->phase_x);
    double ty = t->tip_y + t->amp_y * sin(TWO_PI * t->freq_y * time + t->phase_y);
    double dx = t->pivot_x - tx, dy = t->pivot_y - ty, len = hypot(dx, dy);
    double ax = dx / len, ay = dy / len; /* from the tip back out */
    double hw = t->hw;
    int n = 0;
    /* Nearer the camera the shaft looks wider. */
    parts[n++] = (struct part){tx, ty, t->pivot_x, t->pivot_y, hw, hw * 1.35,
                               s->lut_shaft, 0};
    parts[n++] = (struct part){tx + ax * hw * 1.6, ty + ay * hw * 1.6, tx + ax * hw * 2.4,
                               ty + ay * hw * 2.4, hw * 1.01, hw * 1.02, s->lut_ring, 0};
    double open = 0.08 + 0.32 * (0.5 + 0.5 * sin(TWO_PI * t->jaw_freq * time + t->jaw_phase));
    double fwd = atan2(-ay, -ax);
    for (int side = -1; side <= 1; side += 2) {
        double ang = fwd + side * open;
        double hx = tx - ay * side * hw * 0.3, hy = ty + ax * side * hw * 0.3;
        double jl = hw * 2.6;
        parts[n++] = (struct part){hx - cos(ang) * hw * 0.3, hy - sin(ang) * hw * 0.3,
                                   hx + cos(ang) * jl, hy + sin(ang) * jl, hw * 0.55,
                                   hw * 0.14, s->lut_jaw, 1};
    }
    return n;
}

/* Instruments are grey: chroma goes to 128 by the share of its four luma
 * pixels that are instrument, fully from half on, so tissue colour does
 * not bleed onto a tool and a thin jaw stays grey. */
static void finish_tools(struct mms_synth *s, AVFrame *f, uint8_t *mask, int mask_stride)
{
    int w = s->info.width, h = s->info.height;
    for (int y = 0; y < h; y += 2) {
        int x0 = s->span0[y] < s->span0[y + 1] ? s->span0[y] : s->span0[y + 1];
        int x1 = s->span1[y] > s->span1[y + 1] ? s->span1[y] : s->span1[y + 1];
        if (x0 > x1)
            continue;
        const uint8_t *a0 = s->alpha + (size_t)y * w, *a1 = a0 + w;
        uint8_t *u = f->data[1] + (size_t)(y / 2) * f->linesize[1];
        uint8_t *v = f->data[2] + (size_t)(y / 2) * f->linesize[2];
        for (int x = x0 & ~1; x <= x1; x += 2) {
            int a = a0[x] + a0[x + 1] + a1[x] + a1[x + 1];
            a = a > 510 ? 510 : a;
            u[x / 2] = (uint8_t)(u[x / 2] + (128 - u[x / 2]) * a / 510);
            v[x / 2] = (uint8_t)(v[x / 2] + (128 - v[x / 2]) * a / 510);
        }
    }
    for (int y = 0; y < h; y++) {
        uint8_t *al = s->alpha + (size_t)y * w;
        const uint8_t *cov = s->cover + (size_t)y * w;
        if (mask) {
            uint8_t *m = mask + (size_t)y * mask_stride;
            memset(m, 0, w);
            for (int x = s->span0[y]; x <= s->span1[y]; x++)
                m[x] = al[x] >= 128 && cov[x] >= 128 ? 255 : 0;
        }
        if (s->span0[y] <= s->span1[y])
            memset(al + s->span0[y], 0, s->span1[y] - s->span0[y] + 1);
        s->span0[y] = w;
        s->span1[y] = -1;
    }
}

int mms_synth_frame(struct mms_synth *s, int index, AVFrame *f, uint8_t *mask,
                    int mask_stride)
{
    if (index < 0 || f->format != AV_PIX_FMT_YUV420P || f->width != s->info.width ||
        f->height != s->info.height || !f->data[0] || (mask && mask_stride < f->width))
        return -EINVAL;
    double t = index / s->fps;
    int ox, oy;
    drift(s, t, &ox, &oy);
    draw_tissue(s, f, index, ox, oy);
    for (int i = 0; i < s->nglints; i++)
        draw_glint(s, f, &s->glints[i], t, ox, oy);
    for (int k = s->ntools - 1; k >= 0; k--) {
        struct part parts[MAX_PARTS];
        int n = tool_parts(s, &s->tools[k], t, parts);
        for (int i = 0; i < n; i++)
            draw_part(s, f, &parts[i]);
    }
    finish_tools(s, f, mask, mask_stride);
    return 0;
}

/* ---- life cycle ---- */

const struct mms_synth_info *mms_synth_info(const struct mms_synth *s)
{
    return &s->info;
}

void mms_synth_free(struct mms_synth *s)
{
    if (!s)
        return;
    free(s->tex_y);
    free(s->tex_u);
    free(s->tex_v);
    free(s->light);
    free(s->light_c);
    free(s->cover);
    free(s->noise);
    free(s->alpha);
    free(s->span0);
    free(s->span1);
    free(s);
}

static int alloc_buffers(struct mms_synth *s)
{
    size_t n = (size_t)s->info.width * s->info.height;
    size_t tn = (size_t)s->tw * s->th;
    s->tex_y = malloc(tn);
    s->tex_u = malloc(tn / 4);
    s->tex_v = malloc(tn / 4);
    s->light = malloc(n * sizeof(*s->light));
    s->light_c = malloc(n / 4 * sizeof(*s->light_c));
    s->cover = malloc(n);
    s->noise = malloc(NOISE_TILE * NOISE_TILE);
    s->alpha = calloc(n, 1);
    s->span0 = malloc(s->info.height * sizeof(int));
    s->span1 = malloc(s->info.height * sizeof(int));
    if (!s->tex_y || !s->tex_u || !s->tex_v || !s->light || !s->light_c || !s->cover ||
        !s->noise || !s->alpha || !s->span0 || !s->span1)
        return -ENOMEM;
    for (int y = 0; y < s->info.height; y++) {
        s->span0[y] = s->info.width;
        s->span1[y] = -1;
    }
    return 0;
}

int mms_synth_create(int w, int h, uint32_t seed, double fps, struct mms_synth **out,
                     struct mms_err *err)
{
    *out = NULL;
    if (w < 32 || h < 32 || w > MAX_SIDE || h > MAX_SIDE || w % 2 || h % 2)
        return mms_err_set(err, -EINVAL, "synthetic clip size %dx%d: width and height "
                           "must be even, 32..%d", w, h, MAX_SIDE);
    if (!(fps >= 0) || fps > 1000)
        return mms_err_set(err, -EINVAL, "synthetic clip rate %g: must be 0..1000", fps);
    struct mms_synth *s = calloc(1, sizeof(*s));
    int ret;
    if (!s)
        return mms_err_set(err, -ENOMEM, "out of memory");
    s->seed = seed;
    s->fps = fps > 0 ? fps : 25;
    s->info.width = w;
    s->info.height = h;
    s->info.cx = w / 2.0;
    s->info.cy = h / 2.0;
    /* Wider than tall, as the laparoscopes' images: the circle is cut at
     * the top and bottom, black at the sides. */
    s->info.radius = 0.5 * fmin(w, h * 1.5) * 0.98;
    s->margin = 2 * (int)ceil(fmin(w, h) * 0.02);
    s->tw = w + 2 * s->margin;
    s->th = h + 2 * s->margin;
    if ((ret = alloc_buffers(s)) < 0) {
        mms_err_set(err, ret, "out of memory");
        goto fail;
    }
    struct rng r = {seed * 0x2545f4914f6cdd1dull + 1};
    place_tools(s, &r);
    place_glints(s, &r);
    s->info.tools = s->ntools;
    make_lut(s->lut_shaft, 55, 175, 70);
    make_lut(s->lut_jaw, 45, 150, 60);
    make_lut(s->lut_ring, 22, 50, 25);
    make_tissue(s);
    make_light(s);
    make_noise(s);
    *out = s;
    return 0;
fail:
    mms_synth_free(s);
    return ret;
}
