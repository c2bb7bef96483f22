/* Optional C speedups for chatmgmt.moderation: the whole normalization pipeline in one pass.
 *
 * normalize(text, fold, fold_astral, classes, astral, options)
 *
 * does what the pure-Python Normalizer does (the per-character fold, noise skipping, repeat
 * collapsing; see _normalize.py, which holds the reference implementation and all the data)
 * and returns either the normalized text (options & OPT_TEXT) or, for the matcher:
 *
 *   (data, maps, flags)
 *
 * - data: the normalized text encoded as UTF-8 ("surrogatepass"), as a latin-1 str (one
 *   character per byte, what the byte-fed automaton reads);
 * - maps: native int32 pairs, two per byte position p of data (0 <= p <= len(data)):
 *   maps[2p] is, for the character starting at byte p, the offset in the ORIGINAL text where
 *   it (the run it was collapsed from) starts; maps[2p + 1] is, for the character ending at
 *   byte p, the original offset right after it (after the last character of its run);
 * - flags: one byte per byte position p: bit 0 when a hit starting at p fails its left word
 *   boundary (the character before is a word character of a script written with spaces and
 *   no noise was deleted between), bit 1 when a hit ending at p fails its right boundary.
 *
 * The data tables come from Python, so the character classes live in one place:
 * - fold: 65536 native uint32, the fold of every BMP character;
 * - fold_astral: dict {code point: code point} for characters above the BMP;
 * - classes: 65536 bytes of class bits for the BMP (CLS_*, the same as _normalize._CLS_*);
 * - astral: tuple of (lo, hi, bits) ranges with the class bits above the BMP.
 * Word, letter, digit and space tests are Python's own (Py_UNICODE_IS*), as in the re module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
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

#define OPT_NOISE 1
#define OPT_COLLAPSE 2
#define OPT_TEXT 4

typedef struct {
    const unsigned char *classes;
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
    if (c < 0x10000)
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

/* arrays for a text of n characters, carved from one block: a small text uses the stack */
#define SMALL 256

static PyObject *
speedups_normalize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *text, *fold_obj, *fold_astral, *classes_obj, *astral;
    long options;
    Py_ssize_t n, i, m, kk, p, nb;
    int kind;
    const void *data;
    const uint32_t *fold = NULL;
    Classes cl;
    Py_UCS4 small_s[SMALL], small_t[SMALL];
    unsigned char small_k[SMALL], small_tk[SMALL];
    int32_t small_src[SMALL], small_first[SMALL], small_last[SMALL];
    void *block = NULL;
    Py_UCS4 *s, *t;
    unsigned char *k, *tk;
    int32_t *src, *first, *last;
    PyObject *result = NULL;
    (void)module;

    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "normalize() takes exactly 6 arguments");
        return NULL;
    }
    text = args[0];
    fold_obj = args[1];
    fold_astral = args[2];
    classes_obj = args[3];
    astral = args[4];
    options = PyLong_AsLong(args[5]);
    if (options == -1 && PyErr_Occurred())
        return NULL;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be a str");
        return NULL;
    }
    if (fold_obj != Py_None) {
        if (!PyBytes_Check(fold_obj) || PyBytes_GET_SIZE(fold_obj) != 65536 * 4) {
            PyErr_SetString(PyExc_ValueError, "fold must be 65536 native uint32 or None");
            return NULL;
        }
        fold = (const uint32_t *)PyBytes_AS_STRING(fold_obj);
    }
    if (fold_astral != Py_None && !PyDict_Check(fold_astral)) {
        PyErr_SetString(PyExc_TypeError, "fold_astral must be a dict or None");
        return NULL;
    }
    if (!PyBytes_Check(classes_obj) || PyBytes_GET_SIZE(classes_obj) != 65536) {
        PyErr_SetString(PyExc_ValueError, "classes must be 65536 bytes");
        return NULL;
    }
    if (!PyTuple_Check(astral)) {
        PyErr_SetString(PyExc_TypeError, "astral must be a tuple");
        return NULL;
    }
    cl.classes = (const unsigned char *)PyBytes_AS_STRING(classes_obj);
    cl.astral = astral;

    if (PyUnicode_READY(text) < 0)
        return NULL;
    n = PyUnicode_GET_LENGTH(text);
    kind = PyUnicode_KIND(text);
    data = PyUnicode_DATA(text);

    if (n < SMALL) {
        s = small_s;
        t = small_t;
        k = small_k;
        tk = small_tk;
        src = small_src;
        first = small_first;
        last = small_last;
    }
    else {
        size_t cap = (size_t)n + 1;
        if (cap > (size_t)PY_SSIZE_T_MAX / 32) {
            PyErr_NoMemory();
            return NULL;
        }
        block = PyMem_Malloc(cap * (2 * sizeof(Py_UCS4) + 2 + 3 * sizeof(int32_t)));
        if (block == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        s = (Py_UCS4 *)block;
        t = s + cap;
        src = (int32_t *)(t + cap);
        first = src + cap;
        last = first + cap;
        k = (unsigned char *)(last + cap);
        tk = k + cap;
    }

    /* 1. the fold (never changes the length) and the class bits of the folded characters */
    for (i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int bits;
        if (c < 0x10000) {
            if (fold != NULL)
                c = fold[c];
        }
        else if (fold_astral != Py_None && PyDict_GET_SIZE(fold_astral)) {
            PyObject *key = PyLong_FromLong((long)c), *v;
            if (key == NULL)
                goto done;
            v = PyDict_GetItemWithError(fold_astral, key);
            Py_DECREF(key);
            if (v != NULL) {
                long f = PyLong_AsLong(v);
                if (f == -1 && PyErr_Occurred())
                    goto done;
                c = (Py_UCS4)f;
            }
            else if (PyErr_Occurred()) {
                goto done;
            }
        }
        s[i] = c;
        if ((bits = cls(&cl, c)) < 0)
            goto done;
        k[i] = (unsigned char)bits;
    }

    /* 2. noise skipping from s into t (and tk); src: the original offset of each kept
     * character. The tests read the folded text before any deletion, as the regex's
     * lookarounds do. */
    m = 0;
    if (options & OPT_NOISE) {
        p = 0;
        while (p < n) {
            Py_ssize_t del = 0;
            /* only noise, spaces and digits start a deletion */
            if (p > 0 && (k[p] & (CLS_NOISE | CLS_SPACE | CLS_DIGIT)))
                del = noise_at(k, n, p);
            if (del > 0) {
                p += del;
                continue;
            }
            t[m] = s[p];
            tk[m] = k[p];
            src[m] = (int32_t)p;
            m++;
            p++;
        }
    }
    else {
        for (i = 0; i < n; i++) {
            t[i] = s[i];
            tk[i] = k[i];
            src[i] = (int32_t)i;
        }
        m = n;
    }

    /* 3. repeat collapsing (the last of a run is kept) into first/last original offsets */
    kk = 0;
    {
        Py_ssize_t run = 0;
        int collapse = (options & OPT_COLLAPSE) != 0;
        for (i = 0; i < m; i++) {
            if (collapse && i + 1 < m && t[i] == t[i + 1])
                continue;
            t[kk] = t[i];
            tk[kk] = tk[i];
            first[kk] = src[run];
            last[kk] = src[i];
            kk++;
            run = i + 1;
        }
    }

    if (options & OPT_TEXT) {
        result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, t, kk);
        goto done;
    }

    /* 4. UTF-8 (as a latin-1 str), the offset maps and the boundary flags */
    nb = 0;
    for (i = 0; i < kk; i++)
        nb += utf8_len(t[i]);
    {
        /* all ASCII (a byte per character) or not: the str must be canonical */
        PyObject *latin = PyUnicode_New(nb, nb == kk ? 127 : 255);
        PyObject *maps = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * 2 * (nb + 1));
        PyObject *flags = PyBytes_FromStringAndSize(NULL, nb + 1);
        unsigned char *o, *o0, *fl;
        int32_t *mp;
        if (latin == NULL || maps == NULL || flags == NULL) {
            Py_XDECREF(latin);
            Py_XDECREF(maps);
            Py_XDECREF(flags);
            goto done;
        }
        o0 = o = PyUnicode_1BYTE_DATA(latin);
        mp = (int32_t *)PyBytes_AS_STRING(maps);
        fl = (unsigned char *)PyBytes_AS_STRING(flags);
        memset(mp, 0, sizeof(int32_t) * 2 * (size_t)(nb + 1));
        memset(fl, 0, (size_t)(nb + 1));
        p = 0;
        for (i = 0; i < kk; i++) {
            /* no noise deleted between characters i - 1 and i: the boundary is theirs */
            if (i > 0 && first[i] == last[i - 1] + 1) {
                if (tk[i - 1] & CLS_BWORD)
                    fl[p] |= 1;
                if (tk[i] & CLS_BWORD)
                    fl[p] |= 2;
            }
            mp[2 * p] = first[i];
            o = utf8_put(o, t[i]);
            p = (Py_ssize_t)(o - o0);
            mp[2 * p + 1] = last[i] + 1;
        }
        result = PyTuple_Pack(3, latin, maps, flags);
        Py_DECREF(latin);
        Py_DECREF(maps);
        Py_DECREF(flags);
    }

done:
    PyMem_Free(block);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"normalize", (PyCFunction)(void (*)(void))speedups_normalize, METH_FASTCALL,
     "normalize(text, fold, fold_astral, classes, astral, options): see the module docs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "chatmgmt.moderation._speedups",
    "Optional C speedups for chatmgmt.moderation (the normalizer in one pass).",
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
    return PyModule_Create(&speedups_module);
}
