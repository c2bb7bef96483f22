/* Optional C speedups for chatmgmt.moderation: the normalizer and the verdict's hits in one
 * pass each. The pure-Python code in _normalize.py and _filter.py is the reference (it holds all
 * the data and runs when this extension is missing); differential tests compare the two.
 *
 * normalize(text, fold, fold_astral, classes, astral, options)
 *     The per-character fold, noise skipping and repeat collapsing of _normalize.Normalizer.
 *     With options & OPT_TEXT, the normalized text; otherwise (data, maps, flags):
 *     - data: the normalized text as UTF-8 ("surrogatepass") in a latin-1 str;
 *     - maps: native int32 pairs, two per byte position p of data (0 <= p <= len(data)):
 *       maps[2p] is, for the character starting at byte p, the offset in the ORIGINAL text
 *       where it (the run it was collapsed from) starts; maps[2p + 1] is, for the character
 *       ending at byte p, the original offset right after it; other entries are 0;
 *     - flags: a byte per byte position p: bit 0 when a word starting at p fails its left
 *       boundary (the character before is a word character of a script written with spaces
 *       and no noise was deleted between), bit 1 when a word ending at p fails its right one.
 *
 * check(text, fold, fold_astral, classes, astral, options,
 *       scan, as_bytes, shift, patterns, hit_type, longest)
 *     SensitiveWordFilter.check's hits: normalizes, calls scan(data) (data as normalize's, or
 *     bytes when as_bytes) for an iterable of (end, pattern) matches in bytes (end + shift is
 *     the exclusive end), and decides as _filter.SensitiveWordFilter._verdict does: word
 *     boundaries, allow-list entries cancelling the hits they cover, the longest of
 *     overlapping hits. patterns: a Patterns object (see there) for the filter and role.
 *     Returns (hits, action): the Hit tuples ordered by start, with offsets into the original
 *     text, and the strongest action (the first of the strongest hits); None without a match.
 *
 * The data tables come from Python, so the character classes live in one place:
 * - fold: native uint32 per code point below a limit (_normalize._TABLE_END: the BMP and the
 *   planes of styled letters, emoji and CJK extensions), its fold << 8 | the fold's class bits
 *   (FOLD_ASTRAL: a fold beyond the table, whose bits are looked up);
 * - fold_astral: dict {code point: code point} for characters beyond the fold table, or None;
 * - classes: a byte of class bits (CLS_*, the same as _normalize._CLS_*) per code point below
 *   the same limit;
 * - astral: tuple of (lo, hi, bits) ranges with the range bits beyond it.
 * Beyond the tables, word, letter, digit and space tests are Python's own (Py_UNICODE_IS*),
 * which the re module uses for \w, \d and \s.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

/* class bits; for the BMP all come from the table (built from the re module's own classes),
 * above it the range bits come from the astral ranges and the others from Py_UNICODE_IS*,
 * which the re module uses for \w, \d and \s */
#define CLS_NOISE 1
#define CLS_UNSPACED 2
#define CLS_CJK 4
#define CLS_W 8        /* [^\W_]: alphanumeric */
#define CLS_LETTER 16  /* [^\W\d_] */
#define CLS_SPACE 32   /* \s */
#define CLS_DIGIT 64   /* \d */
#define CLS_BWORD 128  /* a word character of a script written with spaces */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address, write) __builtin_prefetch((address), (write))
#else
#define PREFETCH(address, write) ((void)0)
#endif
/* how many matches ahead the per-pattern data is fetched */
#define PREFETCH_AHEAD 8

/* in a fold entry: the fold lies beyond the table (no character has every class bit: spaces
 * are not word characters) */
#define FOLD_ASTRAL 0xFF

#define OPT_NOISE 1
#define OPT_COLLAPSE 2
#define OPT_TEXT 4

typedef struct {
    const unsigned char *classes;
    Py_ssize_t nclasses;
    PyObject *astral;
} Classes;

static int
astral_bits(const Classes *cl, Py_UCS4 c, int *out)
{
    Py_ssize_t i, n = PyTuple_GET_SIZE(cl->astral);
    int bits = 0;
    for (i = 0; i < n; i++) {
        PyObject *r = PyTuple_GET_ITEM(cl->astral, i);
        long lo, hi, b;
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 3) {
            PyErr_SetString(PyExc_TypeError, "astral ranges must be (lo, hi, bits) tuples");
            return -1;
        }
        lo = PyLong_AsLong(PyTuple_GET_ITEM(r, 0));
        hi = PyLong_AsLong(PyTuple_GET_ITEM(r, 1));
        b = PyLong_AsLong(PyTuple_GET_ITEM(r, 2));
        if (PyErr_Occurred())
            return -1;
        if ((long)c >= lo && (long)c <= hi)
            bits |= (int)b;
    }
    *out = bits;
    return 0;
}

/* class bits of c; -1 on error (only for astral characters) */
static inline int
cls(const Classes *cl, Py_UCS4 c)
{
    int bits;
    if ((Py_ssize_t)c < cl->nclasses)
        return cl->classes[c];
    if (astral_bits(cl, c, &bits) < 0)
        return -1;
    if (Py_UNICODE_ISALNUM(c)) {
        bits |= CLS_W;
        if (!Py_UNICODE_ISDECIMAL(c))
            bits |= CLS_LETTER;
        if (!(bits & CLS_UNSPACED))
            bits |= CLS_BWORD;
    }
    if (Py_UNICODE_ISSPACE(c))
        bits |= CLS_SPACE;
    if (Py_UNICODE_ISDECIMAL(c))
        bits |= CLS_DIGIT;
    return bits;
}

/* Whether a word character follows a run of spaces and noise starting at p, as the lookahead
 * [\s noise]*\w would find one (greedy, then backtracking: a character may be noise and a word
 * character at once). */
static int
word_after_gap(const unsigned char *k, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t r, t;
    for (r = p; r < n && (k[r] & (CLS_SPACE | CLS_NOISE)); r++)
        ;
    for (t = r; t >= p; t--)
        if (t < n && (k[t] & CLS_W))
            return 1;
    return 0;
}

/* The length of the run deleted at p (0: none), exactly as the split regex of
 * _normalize._noise_regex: the alternation's branches in order, greedy runs with the
 * backtracking the regex engine would do. k holds the class bits of the folded text. */
static Py_ssize_t
noise_at(const unsigned char *k, Py_ssize_t n, Py_ssize_t p)
{
    int c = k[p], prev;
    Py_ssize_t q, j;
    if (p == 0)
        return 0;
    prev = k[p - 1];
    /* noise between two word characters: f.u.c.k */
    if ((c & CLS_NOISE) && (prev & CLS_W)) {
        for (q = p + 1; q < n && (k[q] & CLS_NOISE); q++)
            ;
        for (j = q; j > p; j--)
            if (j < n && (k[j] & CLS_W))
                return j - p;
    }
    /* spaces (and noise) between single letters: f u c k */
    if ((c & CLS_SPACE) && (prev & CLS_LETTER) && (p < 2 || !(k[p - 2] & CLS_W))) {
        for (q = p + 1; q < n && (k[q] & (CLS_SPACE | CLS_NOISE)); q++)
            ;
        for (j = q; j > p; j--)
            if (j < n && (k[j] & CLS_LETTER) && (j + 1 >= n || !(k[j + 1] & CLS_W)))
                return j - p;
    }
    /* one digit or space between two CJK characters: 傻1逼 */
    if ((c & (CLS_DIGIT | CLS_SPACE)) && (prev & CLS_CJK) && p + 1 < n && (k[p + 1] & CLS_CJK))
        return 1;
    /* noise between a word and whitespace that leads to a word: "refund, guaranteed" (the
     * noise run is greedy and cannot hold a space, so only its end can start the lookahead) */
    if ((c & CLS_NOISE) && (prev & CLS_W)) {
        for (q = p + 1; q < n && (k[q] & CLS_NOISE); q++)
            ;
        if (q < n && (k[q] & CLS_SPACE) && word_after_gap(k, n, q + 1))
            return q - p;
    }
    /* after a space, the rest of a run of spaces and noise before a word: "a  -  b" */
    if ((c & (CLS_SPACE | CLS_NOISE)) && (prev & CLS_SPACE)) {
        for (q = p + 1; q < n && (k[q] & (CLS_SPACE | CLS_NOISE)); q++)
            ;
        for (j = q; j > p; j--)
            if (j < n && (k[j] & CLS_W))
                return j - p;
    }
    return 0;
}

static int
utf8_len(Py_UCS4 c)
{
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

static unsigned char *
utf8_put(unsigned char *o, Py_UCS4 c)
{
    if (c < 0x80) {
        *o++ = (unsigned char)c;
    }
    else if (c < 0x800) {
        *o++ = (unsigned char)(0xC0 | (c >> 6));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    }
    else if (c < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (c >> 12));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    }
    else {
        *o++ = (unsigned char)(0xF0 | (c >> 18));
        *o++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    }
    return o;
}

/* ---------------------------------------------------------------------------------------- */
/* The normalized text: per character, the folded character, its class bits, and where the run
 * it stands for starts (first) and ends (last, inclusive) in the original text. Deleting
 * passes compact the characters and offsets in place (they write behind where they read);
 * the class bits have two arrays, since a noise pass tests the classes before its own
 * deletions. A short text uses the arrays in the struct (on the caller's stack); a long one,
 * one block from the heap. */
#define SMALL 256

typedef struct {
    Py_ssize_t len;         /* normalized length */
    Py_UCS4 *t;             /* normalized text */
    unsigned char *tk;      /* its class bits: k[kc] */
    int32_t *first, *last;  /* original offsets of each character's run */
    unsigned char *k[2];
    int kc;                 /* which k holds the current class bits */
    void *block;
    /* where the last pass deleted: output indices with deleted characters right before */
    Py_ssize_t *junctions, njunctions, junctions_cap;
    Py_UCS4 small_c[SMALL];
    unsigned char small_k[2][SMALL];
    int32_t small_f[SMALL], small_l[SMALL];
} Norm;

static void
norm_free(Norm *nm)
{
    PyMem_Free(nm->block);
    nm->block = NULL;
    PyMem_Free(nm->junctions);
    nm->junctions = NULL;
}

static int
junction(Norm *nm, Py_ssize_t at)
{
    if (nm->njunctions == nm->junctions_cap) {
        Py_ssize_t cap = nm->junctions_cap ? 2 * nm->junctions_cap : 64;
        Py_ssize_t *v = PyMem_Realloc(nm->junctions, sizeof(Py_ssize_t) * (size_t)cap);
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        nm->junctions = v;
        nm->junctions_cap = cap;
    }
    nm->junctions[nm->njunctions++] = at;
    return 0;
}

/* whether noise was deleted between normalized characters i - 1 and i (0 < i < len) */
static inline int
gap(const Norm *nm, Py_ssize_t i)
{
    return nm->first[i] != nm->last[i - 1] + 1;
}

/* a word starting at normalized character i fails its left word boundary */
static inline int
left_blocked(const Norm *nm, Py_ssize_t i)
{
    return i > 0 && i < nm->len && (nm->tk[i - 1] & CLS_BWORD) && !gap(nm, i);
}

/* a word ending right before normalized character i fails its right word boundary */
static inline int
right_blocked(const Norm *nm, Py_ssize_t i)
{
    return i > 0 && i < nm->len && (nm->tk[i] & CLS_BWORD) && !gap(nm, i);
}

/* move characters [from, to) back to position m (m <= from); the class bits from k_in to k_out */
static inline void
move_chunk(Norm *nm, const unsigned char *k_in, unsigned char *k_out, Py_ssize_t from,
           Py_ssize_t to, Py_ssize_t m)
{
    size_t len = (size_t)(to - from);
    if (len == 0)
        return;
    if (m != from) {
        memmove(nm->t + m, nm->t + from, len * sizeof(Py_UCS4));
        memmove(nm->first + m, nm->first + from, len * sizeof(int32_t));
        memmove(nm->last + m, nm->last + from, len * sizeof(int32_t));
    }
    if (m != from || k_in != k_out)
        memmove(k_out + m, k_in + from, len);
}

/* One pass of noise skipping over the n current characters, as one re.split of the regex
 * (the scan goes on right after each deleted run): tests read the current class bits, the
 * kept characters' bits go to the other array. Returns how many characters were kept; when
 * that is n, nothing was written (and the current bits stay current). */
static Py_ssize_t
noise_pass(Norm *nm, Py_ssize_t n)
{
    const unsigned char *k = nm->k[nm->kc];
    unsigned char *k_out = nm->k[!nm->kc];
    Py_ssize_t p, start = 0, m = 0;
    for (p = 1; p < n; p++) {
        Py_ssize_t del;
        /* only noise, spaces and digits start a deletion */
        if (!(k[p] & (CLS_NOISE | CLS_SPACE | CLS_DIGIT)))
            continue;
        del = noise_at(k, n, p);
        if (del == 0)
            continue;
        move_chunk(nm, k, k_out, start, p, m);
        m += p - start;
        if (junction(nm, m) < 0)
            return -1;
        start = p + del;
        p = start - 1; /* the next test is at start */
    }
    if (start == 0)
        return n;
    move_chunk(nm, k, k_out, start, n, m);
    nm->kc = !nm->kc;
    return m + (n - start);
}

/* Repeat collapsing of the n current characters, in place, as _REPEAT.split: the last
 * character of a run is kept and stands for the whole run. Returns how many were kept. */
static Py_ssize_t
collapse_pass(Norm *nm, Py_ssize_t n)
{
    Py_UCS4 *c = nm->t;
    unsigned char *k = nm->k[nm->kc];
    Py_ssize_t i, j, start = 0, m = 0;
    for (i = 0; i + 1 < n; i++) {
        Py_UCS4 cj;
        unsigned char kj;
        int32_t fi, lj;
        if (c[i] != c[i + 1])
            continue;
        for (j = i + 1; j + 1 < n && c[j + 1] == c[i]; j++)
            ;
        /* the run is i..j: one character, c[j], standing for all of it */
        cj = c[j];
        kj = k[j];
        fi = nm->first[i];
        lj = nm->last[j];
        move_chunk(nm, k, k, start, i, m);
        m += i - start;
        if (junction(nm, m) < 0)
            return -1;
        c[m] = cj;
        k[m] = kj;
        nm->first[m] = fi;
        nm->last[m] = lj;
        m++;
        start = j + 1;
        i = j;
    }
    if (start == 0)
        return n;
    move_chunk(nm, k, k, start, n, m);
    return m + (n - start);
}

/* Whether a noise pass over the current characters would delete anything, given that the pass that made it
 * (noise or collapsing) deleted right before the junctions and the text before that pass had
 * nothing to delete. A deletion at p depends on characters p - 2 .. q + 1 (q: the end of its
 * run); where they hold no junction they are as they were, and nothing was deletable there.
 * So only p near a junction is tested: from J - 2 (and further left over a run of noise and
 * spaces ending at J - 2) to J + 2, in order, as the regex scan would. */
static int
noise_left(const Norm *nm, Py_ssize_t n)
{
    const unsigned char *k = nm->k[nm->kc];
    Py_ssize_t j, p, next = 1;
    for (j = 0; j < nm->njunctions; j++) {
        Py_ssize_t at = nm->junctions[j], lo = at - 2, hi = at + 2;
        while (lo - 1 >= 1 && lo < n && (k[lo] & (CLS_NOISE | CLS_SPACE)))
            lo--;
        if (lo < next)
            lo = next;
        if (hi > n - 1)
            hi = n - 1;
        for (p = lo; p <= hi; p++)
            if ((k[p] & (CLS_NOISE | CLS_SPACE | CLS_DIGIT)) && noise_at(k, n, p) > 0)
                return 1;
        if (hi + 1 > next)
            next = hi + 1;
    }
    return 0;
}

/* Noise passes over the *n current characters until one deletes nothing (after the first, a
 * pass runs only if noise_left finds something it would delete); -1 on error. */
static int
skip_noise(Norm *nm, Py_ssize_t *n)
{
    Py_ssize_t m;
    do {
        nm->njunctions = 0;
        if ((m = noise_pass(nm, *n)) < 0)
            return -1;
        if (m == *n)
            return 0;
        *n = m;
    } while (noise_left(nm, *n));
    return 0;
}

/* args[0..5]: text, fold, fold_astral, classes, astral, options. 0 or -1 on error. */
static int
prepare(Norm *nm, PyObject *const *args, long *options_out)
{
    PyObject *text = args[0], *fold_obj = args[1], *fold_astral = args[2];
    PyObject *classes_obj = args[3], *astral = args[4];
    long options = PyLong_AsLong(args[5]);
    const uint32_t *fold;
    Classes cl;
    Py_ssize_t n, i, nfold;
    int kind;
    const void *data;
    Py_UCS4 *s;
    unsigned char *k;
    int32_t *f, *l;

    nm->block = NULL;
    nm->junctions = NULL;
    nm->njunctions = nm->junctions_cap = 0;
    if (options == -1 && PyErr_Occurred())
        return -1;
    *options_out = options;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be a str");
        return -1;
    }
    if (!PyBytes_Check(fold_obj) || PyBytes_GET_SIZE(fold_obj) < 0x10000 * 4 ||
        PyBytes_GET_SIZE(fold_obj) % 4) {
        PyErr_SetString(PyExc_ValueError, "fold must be native uint32, for the BMP at least");
        return -1;
    }
    fold = (const uint32_t *)PyBytes_AS_STRING(fold_obj);
    nfold = PyBytes_GET_SIZE(fold_obj) / 4;
    if (fold_astral != Py_None && !PyDict_Check(fold_astral)) {
        PyErr_SetString(PyExc_TypeError, "fold_astral must be a dict or None");
        return -1;
    }
    if (!PyBytes_Check(classes_obj) || PyBytes_GET_SIZE(classes_obj) < 0x10000) {
        PyErr_SetString(PyExc_ValueError, "classes must cover the BMP at least");
        return -1;
    }
    if (!PyTuple_Check(astral)) {
        PyErr_SetString(PyExc_TypeError, "astral must be a tuple");
        return -1;
    }
    cl.classes = (const unsigned char *)PyBytes_AS_STRING(classes_obj);
    cl.nclasses = PyBytes_GET_SIZE(classes_obj);
    cl.astral = astral;

#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return -1;
#endif
    n = PyUnicode_GET_LENGTH(text);
    kind = PyUnicode_KIND(text);
    data = PyUnicode_DATA(text);

    if (n < SMALL) {
        nm->t = nm->small_c;
        nm->first = nm->small_f;
        nm->last = nm->small_l;
        nm->k[0] = nm->small_k[0];
        nm->k[1] = nm->small_k[1];
    }
    else {
        size_t cap = (size_t)n + 1;
        char *block;
        if (cap > (size_t)PY_SSIZE_T_MAX / 32) {
            PyErr_NoMemory();
            return -1;
        }
        block = PyMem_Malloc(cap * (sizeof(Py_UCS4) + 2 * sizeof(int32_t) + 2));
        if (block == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        nm->block = block;
        nm->t = (Py_UCS4 *)block;
        nm->first = (int32_t *)(nm->t + cap);
        nm->last = nm->first + cap;
        nm->k[0] = (unsigned char *)(nm->last + cap);
        nm->k[1] = nm->k[0] + cap;
    }
    nm->kc = 0;

    /* 1. the fold (never changes the length) and the class bits of the folded characters */
    s = nm->t;
    k = nm->k[0];
    f = nm->first;
    l = nm->last;
    for (i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int bits;
        if ((Py_ssize_t)c < nfold) {
            /* the folded character and its class bits in one entry */
            uint32_t e = fold[c];
            c = e >> 8;
            bits = (int)(e & 0xFF);
            if (bits != FOLD_ASTRAL) {
                s[i] = c;
                k[i] = (unsigned char)bits;
                f[i] = l[i] = (int32_t)i;
                continue;
            }
        }
        else if (fold_astral != Py_None && PyDict_GET_SIZE(fold_astral)) {
            PyObject *key = PyLong_FromLong((long)c), *v;
            if (key == NULL)
                goto error;
            v = PyDict_GetItemWithError(fold_astral, key);
            Py_DECREF(key);
            if (v != NULL) {
                long fc = PyLong_AsLong(v);
                if (fc == -1 && PyErr_Occurred())
                    goto error;
                c = (Py_UCS4)fc;
            }
            else if (PyErr_Occurred()) {
                goto error;
            }
        }
        s[i] = c;
        if ((bits = cls(&cl, c)) < 0)
            goto error;
        k[i] = (unsigned char)bits;
        f[i] = l[i] = (int32_t)i;
    }

    /* 2. noise skipping, passes until one deletes nothing (a deletion can put a digit between
     * two CJK characters, say); 3. repeat collapsing; and again while collapsing deleted
     * something (it can make single letters of "aa b"): normalizing is idempotent */
    if ((options & OPT_NOISE) && skip_noise(nm, &n) < 0)
        goto error;
    if (options & OPT_COLLAPSE) {
        for (;;) {
            Py_ssize_t m;
            nm->njunctions = 0;
            if ((m = collapse_pass(nm, n)) < 0)
                goto error;
            if (m == n)
                break;
            n = m;
            /* collapsing joins what it kept with what came before: noise again, and if
             * that deletes something, collapsing again */
            if (!(options & OPT_NOISE) || !noise_left(nm, n))
                break;
            if (skip_noise(nm, &n) < 0)
                goto error;
        }
    }
    nm->len = n;
    nm->tk = nm->k[nm->kc];
    return 0;

error:
    norm_free(nm);
    return -1;
}

/* the normalized text as UTF-8: a latin-1 str (canonical: ASCII when every byte is), or bytes */
static PyObject *
utf8_data(const Norm *nm, int as_bytes)
{
    Py_ssize_t i, nb = 0;
    PyObject *out;
    unsigned char *o;
    for (i = 0; i < nm->len; i++)
        nb += utf8_len(nm->t[i]);
    if (as_bytes) {
        out = PyBytes_FromStringAndSize(NULL, nb);
        if (out == NULL)
            return NULL;
        o = (unsigned char *)PyBytes_AS_STRING(out);
    }
    else {
        out = PyUnicode_New(nb, nb == nm->len ? 127 : 255);
        if (out == NULL)
            return NULL;
        o = PyUnicode_1BYTE_DATA(out);
    }
    for (i = 0; i < nm->len; i++)
        o = utf8_put(o, nm->t[i]);
    return out;
}

static PyObject *
speedups_normalize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Norm nm;
    long options;
    Py_ssize_t i, p, nb;
    PyObject *latin = NULL, *maps = NULL, *flags = NULL, *result = NULL;
    unsigned char *fl;
    int32_t *mp;
    (void)module;

    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "normalize() takes exactly 6 arguments");
        return NULL;
    }
    if (prepare(&nm, args, &options) < 0)
        return NULL;
    if (options & OPT_TEXT) {
        result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, nm.t, nm.len);
        goto done;
    }
    latin = utf8_data(&nm, 0);
    if (latin == NULL)
        goto done;
    nb = PyUnicode_GET_LENGTH(latin);
    maps = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * 2 * (nb + 1));
    flags = PyBytes_FromStringAndSize(NULL, nb + 1);
    if (maps == NULL || flags == NULL)
        goto done;
    mp = (int32_t *)PyBytes_AS_STRING(maps);
    fl = (unsigned char *)PyBytes_AS_STRING(flags);
    memset(mp, 0, sizeof(int32_t) * 2 * (size_t)(nb + 1));
    memset(fl, 0, (size_t)(nb + 1));
    p = 0;
    for (i = 0; i <= nm.len; i++) {
        fl[p] = (unsigned char)(left_blocked(&nm, i) | (right_blocked(&nm, i) << 1));
        if (i == nm.len)
            break;
        mp[2 * p] = nm.first[i];
        p += utf8_len(nm.t[i]);
        mp[2 * p + 1] = nm.last[i] + 1;
    }
    result = PyTuple_Pack(3, latin, maps, flags);

done:
    Py_XDECREF(latin);
    Py_XDECREF(maps);
    Py_XDECREF(flags);
    norm_free(&nm);
    return result;
}

/* ---------------------------------------------------------------------------------------- */
/* check(): the hits */
#define M_LEFT 1
#define M_RIGHT 2
#define M_ALLOWED 4
#define M_HIT 8

typedef struct {
    Py_ssize_t start, end, pattern;
} Span;

static int
span_cmp(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* longest first, then leftmost */
static int
longest_cmp(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    Py_ssize_t lx = x->end - x->start, ly = y->end - y->start;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return 0;
}

/* by end, then pattern: the order the matches are counted in */
static int
raw_cmp(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    if (x->pattern != y->pattern)
        return x->pattern < y->pattern ? -1 : 1;
    return 0;
}

/* where spans (sorted) overlap, keep the longest, then the leftmost, as _filter._longest;
 * returns the new count */
static Py_ssize_t
keep_longest(Span *d, Py_ssize_t n, Span *scratch)
{
    Py_ssize_t i = 0, out = 0;
    while (i < n) {
        Py_ssize_t j = i + 1, cluster_end = d[i].end, a, c, chosen;
        while (j < n && d[j].start < cluster_end) {
            if (d[j].end > cluster_end)
                cluster_end = d[j].end;
            j++;
        }
        if (j == i + 1) {
            d[out++] = d[i];
            i = j;
            continue;
        }
        memcpy(scratch, d + i, sizeof(Span) * (size_t)(j - i));
        qsort(scratch, (size_t)(j - i), sizeof(Span), longest_cmp);
        chosen = 0; /* the chosen ones are kept at the front of scratch */
        for (a = 0; a < j - i; a++) {
            int free = 1;
            for (c = 0; c < chosen; c++)
                if (!(scratch[a].end <= scratch[c].start || scratch[c].end <= scratch[a].start)) {
                    free = 0;
                    break;
                }
            if (free)
                scratch[chosen++] = scratch[a];
        }
        qsort(scratch, (size_t)chosen, sizeof(Span), span_cmp);
        memcpy(d + out, scratch, sizeof(Span) * (size_t)chosen);
        out += chosen;
        i = j;
    }
    return out;
}

/* a growable array of Span */
typedef struct {
    Span *v;
    Py_ssize_t n, cap;
} Spans;

static int
spans_push(Spans *a, Py_ssize_t start, Py_ssize_t end, Py_ssize_t pattern)
{
    if (a->n == a->cap) {
        Py_ssize_t cap = a->cap ? 2 * a->cap : 16;
        Span *v = PyMem_Realloc(a->v, sizeof(Span) * (size_t)cap);
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n].start = start;
    a->v[a->n].end = end;
    a->v[a->n].pattern = pattern;
    a->n++;
    return 0;
}

/* Patterns: per pattern of a filter and role, what check() reads for each match, in one
 * record (one cache line fetched per match instead of three objects):
 * Patterns(meta, hit4s) with meta native int32 triples (UTF-8 length, length in characters,
 * M_* bits) and hit4s the first four fields of the pattern's hits (word, category, action,
 * role), or None. Holds references to strings and enum members only: no cycle can go
 * through it. */
typedef struct {
    int32_t blen, clen, bits;
    long action_value;
    PyObject *fields[4]; /* NULL without M_HIT */
} Pat;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Pat *v;
} PatternsObject;

static void
patterns_dealloc(PyObject *op)
{
    PatternsObject *self = (PatternsObject *)op;
    Py_ssize_t i;
    int f;
    for (i = 0; i < self->n; i++)
        for (f = 0; f < 4; f++)
            Py_XDECREF(self->v[i].fields[f]);
    PyMem_Free(self->v);
    Py_TYPE(op)->tp_free(op);
}

static PyObject *
patterns_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *meta_obj, *hit4s;
    PatternsObject *self;
    const int32_t *meta;
    Py_ssize_t n, i;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "Patterns(meta, hit4s) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!:Patterns", &PyBytes_Type, &meta_obj, &PyTuple_Type, &hit4s))
        return NULL;
    n = PyTuple_GET_SIZE(hit4s);
    if (PyBytes_GET_SIZE(meta_obj) != (Py_ssize_t)sizeof(int32_t) * 3 * n) {
        PyErr_SetString(PyExc_ValueError, "Patterns(): meta and hit4s disagree");
        return NULL;
    }
    meta = (const int32_t *)PyBytes_AS_STRING(meta_obj);
    self = (PatternsObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->v = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Pat));
    if (self->v == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->n = n;
    for (i = 0; i < n; i++) {
        Pat *pt = &self->v[i];
        PyObject *h4 = PyTuple_GET_ITEM(hit4s, i);
        int f;
        pt->blen = meta[3 * i];
        pt->clen = meta[3 * i + 1];
        pt->bits = meta[3 * i + 2] & ~M_HIT;
        if (pt->blen <= 0 || pt->clen <= 0 || pt->clen > pt->blen) {
            PyErr_SetString(PyExc_ValueError, "Patterns(): bad pattern lengths");
            Py_DECREF(self);
            return NULL;
        }
        if (h4 == Py_None)
            continue;
        if (!PyTuple_Check(h4) || PyTuple_GET_SIZE(h4) != 4) {
            PyErr_SetString(PyExc_TypeError, "Patterns(): hit4s items must be 4-tuples or None");
            Py_DECREF(self);
            return NULL;
        }
        pt->action_value = PyLong_AsLong(PyTuple_GET_ITEM(h4, 2));
        if (pt->action_value == -1 && PyErr_Occurred()) {
            Py_DECREF(self);
            return NULL;
        }
        pt->bits |= M_HIT;
        for (f = 0; f < 4; f++)
            pt->fields[f] = Py_NewRef(PyTuple_GET_ITEM(h4, f));
    }
    return (PyObject *)self;
}

static Py_ssize_t
patterns_len(PyObject *op)
{
    return ((PatternsObject *)op)->n;
}

static PySequenceMethods patterns_as_sequence = {
    .sq_length = patterns_len,
};

static PyTypeObject PatternsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "chatmgmt.moderation._speedups.Patterns",
    .tp_basicsize = sizeof(PatternsObject),
    .tp_dealloc = patterns_dealloc,
    .tp_as_sequence = &patterns_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Patterns(meta, hit4s): what check() reads per pattern, in one record each.",
    .tp_new = patterns_new,
};

/* Matches: a match_event_handler for hyperscan that records (to, id) in C, so the matches
 * need no Python frame and no tuple each; check() reads them directly. */
typedef struct {
    PyObject_HEAD
    Spans spans;
} MatchesObject;

static PyObject *
matches_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    MatchesObject *self = (MatchesObject *)op;
    long id, to;
    if (kwargs != NULL || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 3) {
        PyErr_SetString(PyExc_TypeError, "Matches(id, from, to, ...)");
        return NULL;
    }
    id = PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
    to = PyLong_AsLong(PyTuple_GET_ITEM(args, 2));
    if ((id == -1 || to == -1) && PyErr_Occurred())
        return NULL;
    if (spans_push(&self->spans, 0, to, id) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t
matches_len(PyObject *op)
{
    return ((MatchesObject *)op)->spans.n;
}

static void
matches_dealloc(PyObject *op)
{
    PyMem_Free(((MatchesObject *)op)->spans.v);
    Py_TYPE(op)->tp_free(op);
}

static PySequenceMethods matches_as_sequence = {
    .sq_length = matches_len,
};

static PyTypeObject MatchesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "chatmgmt.moderation._speedups.Matches",
    .tp_basicsize = sizeof(MatchesObject),
    .tp_dealloc = matches_dealloc,
    .tp_call = matches_call,
    .tp_as_sequence = &matches_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Matches(): a hyperscan match_event_handler recording (to, id) for check().",
    .tp_new = PyType_GenericNew,
};

/* one raw match, checked against the data and the patterns */
static int
push_raw(Spans *raw, long end, long pat, Py_ssize_t npat, Py_ssize_t nb)
{
    if (pat < 0 || pat >= npat || end <= 0 || end > nb) {
        PyErr_SetString(PyExc_ValueError, "scan gave a match outside the data or patterns");
        return -1;
    }
    return spans_push(raw, 0, end, pat);
}

/* the raw matches of scan(data) in bytes, sorted by end */
static int
collect(PyObject *matches, long shift, Py_ssize_t npat, Py_ssize_t nb, Spans *raw)
{
    Py_ssize_t i;
    int sorted = 1;
    if (Py_IS_TYPE(matches, &MatchesType)) {
        const Spans *m = &((MatchesObject *)matches)->spans;
        for (i = 0; i < m->n; i++)
            if (push_raw(raw, (long)(m->v[i].end + shift), (long)m->v[i].pattern, npat, nb) < 0)
                return -1;
    }
    else {
        PyObject *it = PyObject_GetIter(matches), *item;
        if (it == NULL)
            return -1;
        while ((item = PyIter_Next(it)) != NULL) {
            long end, pat;
            int ok = PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2;
            if (!ok)
                PyErr_SetString(PyExc_TypeError, "scan must give (end, pattern) pairs");
            else {
                end = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
                pat = PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
                ok = !((end == -1 || pat == -1) && PyErr_Occurred()) &&
                     push_raw(raw, end + shift, pat, npat, nb) == 0;
            }
            Py_DECREF(item);
            if (!ok) {
                Py_DECREF(it);
                return -1;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            return -1;
    }
    for (i = 1; i < raw->n && sorted; i++)
        sorted = raw->v[i].end >= raw->v[i - 1].end;
    if (!sorted)
        qsort(raw->v, (size_t)raw->n, sizeof(Span), raw_cmp);
    return 0;
}

static PyObject *
speedups_check(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Norm nm;
    long options, shift;
    int as_bytes, longest;
    PyObject *data = NULL, *matches = NULL, *hits = NULL, *result = NULL, *action = NULL;
    PyObject *scan, *hit_type_obj;
    PyTypeObject *hit_type;
    const Pat *pats;
    const unsigned char *bytes;
    Spans raw = {NULL, 0, 0}, deny = {NULL, 0, 0}, allowed = {NULL, 0, 0};
    Span *scratch = NULL;
    Py_ssize_t npat, nb, i, pos = 0, chars = 0;
    long best = LONG_MIN;
    (void)module;

    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "check() takes exactly 12 arguments");
        return NULL;
    }
    scan = args[6];
    as_bytes = PyObject_IsTrue(args[7]);
    shift = PyLong_AsLong(args[8]);
    hit_type_obj = args[10];
    longest = PyObject_IsTrue(args[11]);
    if (as_bytes < 0 || longest < 0 || (shift == -1 && PyErr_Occurred()))
        return NULL;
    if (!Py_IS_TYPE(args[9], &PatternsType) || !PyType_Check(hit_type_obj) ||
        !PyType_IsSubtype((PyTypeObject *)hit_type_obj, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "check(): bad argument types");
        return NULL;
    }
    hit_type = (PyTypeObject *)hit_type_obj;
    npat = ((PatternsObject *)args[9])->n;
    pats = ((PatternsObject *)args[9])->v;

    if (prepare(&nm, args, &options) < 0)
        return NULL;
    data = utf8_data(&nm, as_bytes);
    if (data == NULL)
        goto done;
    matches = PyObject_CallOneArg(scan, data);
    if (matches == NULL)
        goto done;
    if (as_bytes) {
        bytes = (const unsigned char *)PyBytes_AS_STRING(data);
        nb = PyBytes_GET_SIZE(data);
    }
    else {
        bytes = PyUnicode_1BYTE_DATA(data);
        nb = PyUnicode_GET_LENGTH(data);
    }
    if (collect(matches, shift, npat, nb, &raw) < 0)
        goto done;
    if (raw.n == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }

    /* in characters: each end is counted once, in order (UTF-8 continuation bytes are
     * 10xxxxxx); a match is exactly its pattern, so it starts its length in characters
     * earlier */
    for (i = 0; i < raw.n; i++) {
        Span *r = &raw.v[i];
        const Pat *pt = &pats[r->pattern];
        long bits;
        /* the patterns of the matches ahead: their records are all over memory */
        if (i + PREFETCH_AHEAD < raw.n)
            PREFETCH(&pats[raw.v[i + PREFETCH_AHEAD].pattern], 0);
        bits = pt->bits;
        Py_ssize_t start, end;
        for (; pos < r->end; pos++)
            chars += (bytes[pos] & 0xC0) != 0x80;
        end = chars;
        start = end - pt->clen;
        if (r->end - pt->blen < 0 || start < 0) {
            PyErr_SetString(PyExc_ValueError, "scan gave a match that is not its pattern");
            goto done;
        }
        if ((bits & M_ALLOWED) && spans_push(&allowed, start, end, r->pattern) < 0)
            goto done;
        if (!(bits & M_HIT) || ((bits & M_LEFT) && left_blocked(&nm, start)) ||
            ((bits & M_RIGHT) && right_blocked(&nm, end)))
            continue;
        if (spans_push(&deny, start, end, r->pattern) < 0)
            goto done;
    }
    if (deny.n && allowed.n) {
        /* an allowed match covering a hit cancels it */
        Py_ssize_t a, kept = 0;
        qsort(allowed.v, (size_t)allowed.n, sizeof(Span), span_cmp);
        for (a = 1; a < allowed.n; a++) /* reach: the furthest end of allowed[0..a] */
            if (allowed.v[a - 1].end > allowed.v[a].end)
                allowed.v[a].end = allowed.v[a - 1].end;
        for (i = 0; i < deny.n; i++) {
            Py_ssize_t lo = 0, hi = allowed.n; /* the first allowed starting after the hit */
            while (lo < hi) {
                Py_ssize_t mid = (lo + hi) / 2;
                if (allowed.v[mid].start <= deny.v[i].start)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo > 0 && allowed.v[lo - 1].end >= deny.v[i].end)
                continue;
            deny.v[kept++] = deny.v[i];
        }
        deny.n = kept;
    }
    if (deny.n > 1) {
        /* each hit starting at or after the end of the one before: ordered and disjoint */
        int ordered = 1;
        for (i = 1; i < deny.n; i++)
            if (deny.v[i].start < deny.v[i - 1].end) {
                ordered = 0;
                break;
            }
        if (!ordered) {
            qsort(deny.v, (size_t)deny.n, sizeof(Span), span_cmp);
            if (longest) {
                scratch = PyMem_Malloc(sizeof(Span) * (size_t)deny.n);
                if (scratch == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                deny.n = keep_longest(deny.v, deny.n, scratch);
            }
        }
    }

    hits = PyTuple_New(deny.n);
    if (hits == NULL)
        goto done;
    for (i = 0; i < deny.n; i++) {
        const Pat *pt = &pats[deny.v[i].pattern];
        PyObject *hit, *a, *b;
        Py_ssize_t f;
        /* the word strings of the hits ahead, whose reference counts are about to change */
        if (i + PREFETCH_AHEAD < deny.n)
            PREFETCH(pats[deny.v[i + PREFETCH_AHEAD].pattern].fields[0], 1);
        a = PyLong_FromLong(nm.first[deny.v[i].start]);
        b = PyLong_FromLong(nm.last[deny.v[i].end - 1] + 1);
        hit = (a && b) ? hit_type->tp_alloc(hit_type, 6) : NULL;
        if (hit == NULL) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            goto done;
        }
        for (f = 0; f < 4; f++)
            PyTuple_SET_ITEM(hit, f, Py_NewRef(pt->fields[f]));
        PyTuple_SET_ITEM(hit, 4, a);
        PyTuple_SET_ITEM(hit, 5, b);
        PyTuple_SET_ITEM(hits, i, hit);
        /* A hit holds two strings, two ints and two enum members (which their classes keep
         * alive for good): no cycle through it can ever be garbage, so the cyclic GC need not
         * track it. Tracked, the hits of bulk text made the GC traverse a host's whole heap
         * every few MiB (~3 ms per MiB with 200,000 tracked objects in the process). */
        PyObject_GC_UnTrack(hit);
        if (pt->action_value > best) {
            best = pt->action_value;
            action = pt->fields[2];
        }
    }
    if (action == NULL)
        result = Py_NewRef(Py_None);
    else
        result = PyTuple_Pack(2, hits, action);

done:
    Py_XDECREF(data);
    Py_XDECREF(matches);
    Py_XDECREF(hits);
    PyMem_Free(raw.v);
    PyMem_Free(deny.v);
    PyMem_Free(allowed.v);
    PyMem_Free(scratch);
    norm_free(&nm);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"normalize", (PyCFunction)(void (*)(void))speedups_normalize, METH_FASTCALL,
     "normalize(text, fold, fold_astral, classes, astral, options): see the module docs."},
    {"check", (PyCFunction)(void (*)(void))speedups_check, METH_FASTCALL,
     "check(text, fold, fold_astral, classes, astral, options, scan, as_bytes, shift, "
     "patterns, hit_type, longest): see the module docs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "chatmgmt.moderation._speedups",
    "Optional C speedups for chatmgmt.moderation (see _speedups.c).",
    -1,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    if (PyType_Ready(&MatchesType) < 0 || PyType_Ready(&PatternsType) < 0)
        return NULL;
    m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&MatchesType);
    if (PyModule_AddObject(m, "Matches", (PyObject *)&MatchesType) < 0) {
        Py_DECREF(&MatchesType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&PatternsType);
    if (PyModule_AddObject(m, "Patterns", (PyObject *)&PatternsType) < 0) {
        Py_DECREF(&PatternsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
