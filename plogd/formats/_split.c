/* The split path of a compiled log format, in C: lines -> typed columns.
 *
 * The optional speedup of plogd (see compiled.py, which builds the plan and is the only
 * user). It does what the Python collector that logformat._Layout generates does, line by
 * line: split on '"' and the unquoted parts on ' ', check the layout and every literal, and
 * send a line that does not fit (a backslash, a list taking more than a list, more or fewer
 * parts or tokens) to the misfits, for the regex to decide. Then, instead of collecting raw
 * tokens for Python to convert, it converts the tokens of the common types at once:
 * ints and floats without an intermediate bytes object, times through a small cache of
 * the last seconds seen (a miss asks Python's own time parser: one authority on dates),
 * strings only for the fields asked for. A token that is not of its type makes the whole
 * call return None: the caller then gives the batch to the regex, as the Python path does.
 *
 * Written against the CPython API rather than Cython, cffi or Rust: plogd needs nothing but
 * gcc and the Python headers to build it at `pip install`, no build-time download, and the
 * work (walking bytes, making ints, floats and lists) is what the C API does directly.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* what compiled.py expects: a module of another version (a stale build) is not used */
#define SPLIT_VERSION 3

/* column kinds: keep in step with compiled.py */
enum { K_RAW, K_STR, K_HOST, K_INT, K_OPT_INT, K_BYTES, K_FLOAT, K_FLOAT_LIST, K_TIME };
/* token ops */
enum { T_ANY, T_LIT, T_COL, T_DATE, T_ZONE };
/* part kinds */
enum { P_QUOTED, P_WHOLE, P_TOKENS };

typedef struct {
    int op, col, nonempty;
    const char *lit;
    Py_ssize_t litlen;
} Token;

typedef struct {
    int kind, rest, first, count;   /* tokens [first, first + count) */
    const char *lit;
    Py_ssize_t litlen;
} Part;

typedef struct {
    int kind, store;
} Column;

#define TIME_SLOTS 16
#define TIME_KEY 48
typedef struct {
    Py_ssize_t len;         /* of date + zone */
    Py_ssize_t datelen;
    char key[TIME_KEY];
    PyObject *epoch;        /* NULL: an empty slot */
} TimeSlot;

typedef struct {
    PyObject_HEAD
    PyObject *plan;         /* keeps the literals alive */
    PyObject *epoch;        /* (date token, zone token) -> epoch seconds, or ValueError */
    PyObject *spaces_fit;   /* list token -> whether its spaces are all in separators */
    int n_parts, n_tokens, n_columns;
    Part *parts;
    Token *tokens;
    Column *columns;
    TimeSlot times[TIME_SLOTS];
    TimeSlot *last;         /* the slot of the last line's time */
} Collector;

static PyObject *small_ints[1024];     /* statuses: one object each, as CPython's small ints */

/* -- conversions: 1 converted, 0 not of the type, -1 a Python error ---------------------- */

static const double TOO_BIG = 1e20;    /* fields.TOO_BIG: bigger numbers do not match */

static int
is_dash(const char *s, Py_ssize_t n)
{
    return n == 1 && s[0] == '-';
}

/* digits only, below 10^20 (to_int, _digits_column) */
static int
to_int(const char *s, Py_ssize_t n, PyObject **out)
{
    Py_ssize_t i, lead = 0;
    uint64_t v = 0;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    while (lead < n - 1 && s[lead] == '0')
        lead++;
    if (n - lead > 20)
        return 0;
    if (n - lead > 18) {            /* may not fit 64 bits: let Python read it */
        char buf[24];
        memcpy(buf, s + lead, n - lead);
        buf[n - lead] = '\0';
        *out = PyLong_FromString(buf, NULL, 10);
        return *out ? 1 : -1;
    }
    for (i = lead; i < n; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    if (v < 1024) {
        if (small_ints[v] == NULL && (small_ints[v] = PyLong_FromLong((long)v)) == NULL)
            return -1;
        Py_INCREF(small_ints[v]);
        *out = small_ints[v];
        return 1;
    }
    *out = PyLong_FromUnsignedLongLong(v);
    return *out ? 1 : -1;
}

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* '-' -> None; \d+(\.\d+)? -> float below 10^20 (to_float, _float_numbers) */
static int
to_float(const char *s, Py_ssize_t n, PyObject **out)
{
    Py_ssize_t i, dot = -1, digits = 0;
    uint64_t m = 0;
    double value;
    if (is_dash(s, n)) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    if (n == 0 || s[0] < '0' || s[0] > '9' || s[n - 1] < '0' || s[n - 1] > '9')
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] == '.' && dot < 0)
            dot = i;
        else if (s[i] < '0' || s[i] > '9')
            return 0;
        else if (++digits <= 19)        /* below 10^19: no overflow */
            m = m * 10 + (uint64_t)(s[i] - '0');
    }
    if (digits <= 19 && m < ((uint64_t)1 << 53)) {
        /* m and 10^k are exact doubles (k <= 19): one correctly rounded division, the
           double strtod gives */
        value = dot < 0 ? (double)m : (double)m / POW10[n - dot - 1];
    }
    else {
        char *buf = PyMem_Malloc(n + 1);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        value = PyOS_string_to_double(buf, NULL, NULL);
        PyMem_Free(buf);
        if (value == -1.0 && PyErr_Occurred())
            return -1;
    }
    if (value >= TOO_BIG)
        return 0;
    *out = PyFloat_FromDouble(value);
    return *out ? 1 : -1;
}

/* '-' -> None, else the text (to_str: the line holds no backslash, so nothing to unescape) */
static int
to_str(const char *s, Py_ssize_t n, PyObject **out)
{
    *out = is_dash(s, n) ? Py_NewRef(Py_None) : PyUnicode_DecodeUTF8(s, n, "backslashreplace");
    return *out ? 1 : -1;
}

static PyObject *
bytes_of(const char *s, Py_ssize_t n)
{
    return PyBytes_FromStringAndSize(s, n);
}

/* Python's answer for a token: 0 when it raised ValueError or OverflowError (not of the type) */
static int
ask_python(PyObject *func, PyObject *arg1, PyObject *arg2, PyObject **out)
{
    *out = arg2 ? PyObject_CallFunctionObjArgs(func, arg1, arg2, NULL)
                : PyObject_CallOneArg(func, arg1);
    if (*out)
        return 1;
    if (PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* $upstream_*_time: items ('-' or a number) between ', ' or ' : ', summed in order; None
   when no item is a number (to_float_list, _float_list_numbers) */
static int
to_list_value(const char *s, Py_ssize_t n, PyObject **out)
{
    const char *end = s + n, *item = s;
    double total = 0.0;
    int numbers = 0;
    while (1) {
        const char *stop = item, *next;
        PyObject *value;
        int got;
        while (stop < end && *stop != ',' && *stop != ' ')
            stop++;
        if (stop == end)
            next = NULL;
        else if (end - stop >= 2 && stop[0] == ',' && stop[1] == ' ')
            next = stop + 2;
        else if (end - stop >= 3 && stop[0] == ' ' && stop[1] == ':' && stop[2] == ' ')
            next = stop + 3;
        else
            return 0;
        if ((got = to_float(item, stop - item, &value)) != 1)
            return got;
        if (value != Py_None) {
            total = numbers++ ? total + PyFloat_AS_DOUBLE(value) : PyFloat_AS_DOUBLE(value);
        }
        Py_DECREF(value);
        if (next == NULL)
            break;
        item = next;
    }
    *out = numbers ? PyFloat_FromDouble(total) : Py_NewRef(Py_None);
    return *out ? 1 : -1;
}

static uint32_t
fnv(const char *s, Py_ssize_t n, uint32_t h)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int
same_time(const TimeSlot *slot, const char *d, Py_ssize_t dn, const char *z, Py_ssize_t zn)
{
    return slot->epoch != NULL && slot->len == dn + zn && slot->datelen == dn
           && memcmp(slot->key, d, dn) == 0
           && memcmp(slot->key + dn, z, zn) == 0;
}

/* epoch seconds of the '[date' and 'zone]' tokens: from the cache, else from Python */
static int
to_epoch(Collector *self, const char *d, Py_ssize_t dn, const char *z, Py_ssize_t zn,
         PyObject **out)
{
    PyObject *date, *zone;
    int got;
    TimeSlot *slot = self->last;    /* most lines are of the second before them */
    if (dn + zn > TIME_KEY)
        slot = NULL;
    else if (!same_time(slot, d, dn, z, zn))
        slot = &self->times[fnv(z, zn, fnv(d, dn, 2166136261u)) % TIME_SLOTS];
    if (slot != NULL && same_time(slot, d, dn, z, zn)) {
        self->last = slot;
        *out = Py_NewRef(slot->epoch);
        return 1;
    }
    if ((date = bytes_of(d, dn)) == NULL)
        return -1;
    if ((zone = bytes_of(z, zn)) == NULL) {
        Py_DECREF(date);
        return -1;
    }
    got = ask_python(self->epoch, date, zone, out);
    Py_DECREF(date);
    Py_DECREF(zone);
    if (got == 1 && slot != NULL) {
        self->last = slot;
        Py_XSETREF(slot->epoch, Py_NewRef(*out));
        slot->len = dn + zn;
        slot->datelen = dn;
        memcpy(slot->key, d, dn);
        memcpy(slot->key + dn, z, zn);
    }
    return got;
}

/* the value of one token for its column (*out NULL: checked only) */
static int
convert(int kind, int store, const char *s, Py_ssize_t n, PyObject **out)
{
    int got;
    *out = NULL;
    switch (kind) {
    case K_RAW:
        *out = bytes_of(s, n);
        return *out ? 1 : -1;
    case K_STR:
        return store ? to_str(s, n, out) : 1;
    case K_HOST:        /* an address or a host name: 1 to 253 characters */
        if (n < 1 || n > 253)
            return 0;
        return store ? to_str(s, n, out) : 1;
    case K_INT:
        got = to_int(s, n, out);
        break;
    case K_OPT_INT:
    case K_BYTES:
        if (is_dash(s, n)) {
            *out = kind == K_BYTES ? PyLong_FromLong(0) : Py_NewRef(Py_None);
            got = *out ? 1 : -1;
        }
        else
            got = to_int(s, n, out);
        break;
    case K_FLOAT:
        got = to_float(s, n, out);
        break;
    case K_FLOAT_LIST:
        got = to_list_value(s, n, out);
        break;
    default:
        PyErr_SetString(PyExc_SystemError, "plogd._split: unknown column kind");
        return -1;
    }
    if (got == 1 && !store)
        Py_CLEAR(*out);
    return got;
}

/* -- the collector --------------------------------------------------------------------- */

#define MAX_TOKENS 256


/* Whether the line fits the layout: its tokens in starts/lens. -1 on a Python error. */
static int
fits(Collector *self, const char *s, Py_ssize_t n, const char **starts, Py_ssize_t *lens)
{
    const char *end = s + n, *p = s;
    int i, k;
    if (memchr(s, '\\', n) != NULL)
        return 0;
    for (i = 0; i < self->n_parts; i++) {
        Part *part = &self->parts[i];
        const char *stop = memchr(p, '"', end - p);
        if (i == self->n_parts - 1) {
            if (stop != NULL)
                return 0;
            stop = end;
        }
        else if (stop == NULL)
            return 0;
        if (part->kind == P_WHOLE) {
            if (stop - p != part->litlen || memcmp(p, part->lit, part->litlen) != 0)
                return 0;
        }
        else if (part->kind == P_QUOTED) {
            starts[part->first] = p;
            lens[part->first] = stop - p;
        }
        else {
            const char *q = p;
            for (k = 0; k < part->count; k++) {
                const char *space;
                if (k == part->count - 1) {
                    space = (part->rest || q == stop) ? NULL : memchr(q, ' ', stop - q);
                    if (space != NULL)
                        return 0;           /* more tokens than the layout has */
                    space = stop;
                }
                else if ((space = memchr(q, ' ', stop - q)) == NULL)
                    return 0;               /* fewer */
                starts[part->first + k] = q;
                lens[part->first + k] = space - q;
                q = space + 1;
            }
        }
        p = stop + 1;
    }
    for (k = 0; k < self->n_tokens; k++) {
        Token *t = &self->tokens[k];
        if (t->op == T_LIT && (lens[k] != t->litlen || memcmp(starts[k], t->lit, lens[k]) != 0))
            return 0;
        if (t->nonempty && lens[k] == 0)
            return 0;
    }
    for (i = 0; i < self->n_parts; i++) {     /* a list, and nothing more, in a rest token */
        Part *part = &self->parts[i];
        if (part->kind == P_TOKENS && part->rest) {
            k = part->first + part->count - 1;
            if (memchr(starts[k], ' ', lens[k]) != NULL) {
                PyObject *token = bytes_of(starts[k], lens[k]), *fit;
                int truth;
                if (token == NULL)
                    return -1;
                fit = PyObject_CallOneArg(self->spaces_fit, token);
                Py_DECREF(token);
                if (fit == NULL)
                    return -1;
                truth = PyObject_IsTrue(fit);
                Py_DECREF(fit);
                if (truth != 1)
                    return truth;
            }
        }
    }
    return 1;
}

/* One line into the columns at *row, or into the misfits (`line`: its bytes object, if
   the caller has one). 1 done, 0 a token not of its type, -1 a Python error. */
static int
collect_line(Collector *self, const char *s, Py_ssize_t n, PyObject *line, PyObject *columns,
             PyObject *misfits, Py_ssize_t *row)
{
    const char *starts[MAX_TOKENS];
    Py_ssize_t lens[MAX_TOKENS];
    int k, fit = fits(self, s, n, starts, lens);
    if (fit < 0)
        return -1;
    if (fit == 0) {
        int failed;
        PyObject *misfit = line ? Py_NewRef(line) : bytes_of(s, n);
        if (misfit == NULL)
            return -1;
        failed = PyList_Append(misfits, misfit);
        Py_DECREF(misfit);
        return failed ? -1 : 1;
    }
    for (k = 0; k < self->n_tokens; k++) {
        Token *t = &self->tokens[k];
        PyObject *value;
        int got;
        if (t->op == T_COL) {
            Column *col = &self->columns[t->col];
            got = convert(col->kind, col->store, starts[k], lens[k], &value);
        }
        else if (t->op == T_DATE)           /* the zone is the next token */
            got = to_epoch(self, starts[k], lens[k], starts[k + 1], lens[k + 1], &value);
        else
            continue;
        if (got != 1)
            return got;
        if (value != NULL)
            PyList_SET_ITEM(PyList_GET_ITEM(columns, t->col), *row, value);
    }
    (*row)++;
    return 1;
}

/* the output columns, for up to `capacity` lines (None for a column checked only) */
static PyObject *
new_columns(Collector *self, Py_ssize_t capacity)
{
    int c;
    PyObject *columns = PyList_New(self->n_columns);
    for (c = 0; columns != NULL && c < self->n_columns; c++) {
        PyObject *column = self->columns[c].store ? PyList_New(capacity) : Py_NewRef(Py_None);
        if (column == NULL)
            Py_CLEAR(columns);
        else
            PyList_SET_ITEM(columns, c, column);
    }
    return columns;
}

static void
cut_columns(Collector *self, PyObject *columns, Py_ssize_t rows)
{
    int c;
    for (c = 0; c < self->n_columns; c++)
        if (self->columns[c].store)
            Py_SET_SIZE(PyList_GET_ITEM(columns, c), rows);   /* the rest are NULL */
}

/* collector(lines) -> ([column per plan column, None if checked only], misfits), or None
   when a token is not of its type (the batch is for the regex) */
static PyObject *
collector_call(Collector *self, PyObject *args, PyObject *kwargs)
{
    PyObject *lines, *columns = NULL, *misfits = NULL, *result = NULL;
    Py_ssize_t n_lines, row = 0, j;

    if (!PyArg_ParseTuple(args, "O!:collect", &PyList_Type, &lines))
        return NULL;
    n_lines = PyList_GET_SIZE(lines);
    if ((columns = new_columns(self, n_lines)) == NULL || (misfits = PyList_New(0)) == NULL)
        goto done;
    for (j = 0; j < n_lines; j++) {
        PyObject *line = PyList_GET_ITEM(lines, j);
        int got;
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "collect: lines must be bytes");
            goto done;
        }
        got = collect_line(self, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), line,
                           columns, misfits, &row);
        if (got < 0)
            goto done;
        if (got == 0) {                 /* not of its type: the batch is the regex's */
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    cut_columns(self, columns, row);
    result = PyTuple_Pack(2, columns, misfits);
done:
    Py_XDECREF(columns);        /* NULL items are fine: a list releases with Py_XDECREF */
    Py_XDECREF(misfits);
    return result;
}

/* collector.from_text(data, max_line) -> (columns, misfits, lines, too long), or None: the
   lines of a batch (split on '\n' as read.split_lines does), without a bytes object per
   line; lines longer than max_line are skipped and counted */
static PyObject *
collector_from_text(Collector *self, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t max_line, capacity = 1, row = 0, n_lines = 0, too_long = 0;
    PyObject *columns = NULL, *misfits = NULL, *result = NULL;
    const char *s, *end, *p;

    if (!PyArg_ParseTuple(args, "y*n:from_text", &data, &max_line))
        return NULL;
    s = data.buf;
    end = s + data.len;
    for (p = s; (p = memchr(p, '\n', end - p)) != NULL; p++)
        capacity++;
    if ((columns = new_columns(self, capacity)) == NULL || (misfits = PyList_New(0)) == NULL)
        goto done;
    for (p = s; p < end; ) {
        const char *stop = memchr(p, '\n', end - p);
        int got;
        if (stop == NULL)
            stop = end;         /* the last line, without its newline */
        n_lines++;
        if (stop - p > max_line)
            too_long++;
        else if ((got = collect_line(self, p, stop - p, NULL, columns, misfits, &row)) < 0)
            goto done;
        else if (got == 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        p = stop + 1;
    }
    cut_columns(self, columns, row);
    result = Py_BuildValue("(OOnn)", columns, misfits, n_lines, too_long);
done:
    PyBuffer_Release(&data);
    Py_XDECREF(columns);
    Py_XDECREF(misfits);
    return result;
}

/* has_none(column): `None in column` for columns of ints, floats, strings and None (none
   of which equals None), by identity: without a comparison per value */
static PyObject *
has_none(PyObject *module, PyObject *column)
{
    Py_ssize_t i, n;
    if (!PyList_Check(column)) {
        int found = PySequence_Contains(column, Py_None);
        return found < 0 ? NULL : PyBool_FromLong(found);
    }
    n = PyList_GET_SIZE(column);
    for (i = 0; i < n; i++)
        if (PyList_GET_ITEM(column, i) == Py_None)
            Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* count_values(column): dict(Counter(column)) -- each distinct value (the first object
   seen of it) and its count, in the order first seen -- for a list of floats only (not NaN)
   or of ints only (of 64 bits), in a table keyed by the value's bits, or of strings only
   that are mostly the same few objects (a column made through a table of its distinct
   values: a derived field such as status_class), keyed by the object, equal strings of
   other objects merged at the end; None for any other column (the caller counts with
   Counter). Statuses, request times: few distinct values, many lines, and Counter would
   hash and look up a Python object per line. */
typedef struct {
    uint64_t key;
    PyObject *first;
    Py_ssize_t count;
} Tally;

static PyObject *
count_values(PyObject *module, PyObject *column)
{
    Py_ssize_t n, i, size = 64, used = 0, *order = NULL;
    Tally *table = NULL;
    PyObject *result = NULL;
    int floats, strings;
    if (!PyList_Check(column) || (n = PyList_GET_SIZE(column)) == 0)
        Py_RETURN_NONE;
    floats = PyFloat_CheckExact(PyList_GET_ITEM(column, 0));
    strings = PyUnicode_CheckExact(PyList_GET_ITEM(column, 0));
    table = PyMem_Calloc(size, sizeof(Tally));
    order = PyMem_Malloc(size / 2 * sizeof(Py_ssize_t));
    if (table == NULL || order == NULL)
        goto nomemory;
    for (i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(column, i);
        uint64_t key, h;
        Py_ssize_t at;
        if (floats && PyFloat_CheckExact(v)) {
            double d = PyFloat_AS_DOUBLE(v);
            if (d != d)
                goto other;                 /* NaN: equal to nothing, Counter keeps each */
            if (d == 0.0)
                d = 0.0;                    /* -0.0 == 0.0: one key, as in a dict */
            memcpy(&key, &d, sizeof key);
        }
        else if (strings) {
            if (!PyUnicode_CheckExact(v))
                goto other;
            key = (uint64_t)(uintptr_t)v;
        }
        else if (!floats && PyLong_CheckExact(v)) {
            int overflow;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow)
                goto other;
            key = (uint64_t)x;
        }
        else
            goto other;                     /* mixed (1 == 1.0), strings, None, ... */
        h = key * 0x9E3779B97F4A7C15ull;
        for (at = (Py_ssize_t)(h >> 40) & (size - 1); table[at].first != NULL
                 && table[at].key != key; at = (at + 1) & (size - 1))
            ;
        if (table[at].first != NULL) {
            table[at].count++;
            continue;
        }
        table[at].key = key;
        table[at].first = v;
        table[at].count = 1;
        order[used++] = at;
        if (strings && used > 256 && used * 2 > i)
            goto other;                     /* mostly new objects: Counter does better */
        if (used * 2 >= size) {             /* half full: twice as large */
            Py_ssize_t k, new_size = size * 2;
            Tally *bigger = PyMem_Calloc(new_size, sizeof(Tally));
            Py_ssize_t *new_order = PyMem_Malloc(new_size / 2 * sizeof(Py_ssize_t));
            if (bigger == NULL || new_order == NULL) {
                PyMem_Free(bigger);
                PyMem_Free(new_order);
                goto nomemory;
            }
            for (k = 0; k < used; k++) {
                Tally *t = &table[order[k]];
                Py_ssize_t j = (Py_ssize_t)((t->key * 0x9E3779B97F4A7C15ull) >> 40) & (new_size - 1);
                while (bigger[j].first != NULL)
                    j = (j + 1) & (new_size - 1);
                bigger[j] = *t;
                new_order[k] = j;
            }
            PyMem_Free(table);
            PyMem_Free(order);
            table = bigger;
            order = new_order;
            size = new_size;
        }
    }
    if ((result = PyDict_New()) == NULL)
        goto done;
    for (i = 0; i < used; i++) {
        Tally *t = &table[order[i]];
        PyObject *count, *before = NULL;
        Py_ssize_t total = t->count;
        if (strings) {                      /* an equal string of another object */
            before = PyDict_GetItemWithError(result, t->first);
            if (before == NULL && PyErr_Occurred()) {
                Py_CLEAR(result);
                goto done;
            }
            if (before != NULL)
                total += PyLong_AsSsize_t(before);
        }
        count = PyLong_FromSsize_t(total);
        if (count == NULL || PyDict_SetItem(result, t->first, count) < 0) {
            Py_XDECREF(count);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(count);
    }
    goto done;
other:
    result = Py_NewRef(Py_None);
    goto done;
nomemory:
    PyErr_NoMemory();
done:
    PyMem_Free(table);
    PyMem_Free(order);
    return result;
}

/* min_max(column): (min(column), max(column)), the very objects min and max return (the
   first of equal values), for a non-empty list of ints only (of 64 bits) or of floats only
   (not NaN), in one pass without a comparison through Python per value; None for any
   other column (the caller asks min and max). */
static PyObject *
min_max(PyObject *module, PyObject *column)
{
    Py_ssize_t i, n;
    PyObject *lo, *hi;
    if (!PyList_Check(column) || (n = PyList_GET_SIZE(column)) == 0)
        Py_RETURN_NONE;
    lo = hi = PyList_GET_ITEM(column, 0);
    if (PyFloat_CheckExact(lo)) {
        double low = PyFloat_AS_DOUBLE(lo), high = low;
        if (low != low)
            Py_RETURN_NONE;
        for (i = 1; i < n; i++) {
            PyObject *v = PyList_GET_ITEM(column, i);
            double d;
            if (!PyFloat_CheckExact(v))
                Py_RETURN_NONE;
            d = PyFloat_AS_DOUBLE(v);
            if (d != d)
                Py_RETURN_NONE;
            if (d < low) {
                low = d;
                lo = v;
            }
            else if (d > high) {
                high = d;
                hi = v;
            }
        }
    }
    else if (PyLong_CheckExact(lo)) {
        int overflow;
        long long low = PyLong_AsLongLongAndOverflow(lo, &overflow), high = low;
        if (overflow)
            Py_RETURN_NONE;
        for (i = 1; i < n; i++) {
            PyObject *v = PyList_GET_ITEM(column, i);
            long long x;
            if (!PyLong_CheckExact(v))
                Py_RETURN_NONE;
            x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow)
                Py_RETURN_NONE;
            if (x < low) {
                low = x;
                lo = v;
            }
            else if (x > high) {
                high = x;
                hi = v;
            }
        }
    }
    else
        Py_RETURN_NONE;
    return PyTuple_Pack(2, lo, hi);
}

static PyMethodDef module_methods[] = {
    {"has_none", (PyCFunction)has_none, METH_O, "`None in column`, by identity"},
    {"min_max", (PyCFunction)min_max, METH_O,
     "(min(column), max(column)) for a list of ints or of floats, else None"},
    {"count_values", (PyCFunction)count_values, METH_O,
     "dict(Counter(column)) for a list of floats or of ints, else None"},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef collector_methods[] = {
    {"from_text", (PyCFunction)collector_from_text, METH_VARARGS,
     "from_text(data, max_line) -> (columns, misfits, lines, too_long), or None"},
    {NULL, NULL, 0, NULL},
};

/* Collector(parts, columns, epoch, spaces_fit)
   parts: (kind, literal bytes | token spec | (rest, token specs)) for each '"'-part;
   token spec: (op, literal bytes or column index or None, nonempty);
   columns: (kind, store) for each output column. */
static int
collector_init(Collector *self, PyObject *args, PyObject *kwargs)
{
    PyObject *parts, *columns;
    Py_ssize_t i, k, n_tokens = 0;
    if (self->plan != NULL) {
        PyErr_SetString(PyExc_TypeError, "Collector is initialised once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O!O!OO:Collector", &PyTuple_Type, &parts, &PyTuple_Type,
                          &columns, &self->epoch, &self->spaces_fit))
        return -1;
    Py_INCREF(self->epoch);
    Py_INCREF(self->spaces_fit);
    self->plan = PyTuple_Pack(2, parts, columns);
    if (self->plan == NULL)
        return -1;
    self->n_parts = (int)PyTuple_GET_SIZE(parts);
    self->n_columns = (int)PyTuple_GET_SIZE(columns);
    self->parts = PyMem_Calloc(self->n_parts, sizeof(Part));
    self->columns = PyMem_Calloc(self->n_columns ? self->n_columns : 1, sizeof(Column));
    self->tokens = PyMem_Calloc(MAX_TOKENS, sizeof(Token));
    if (!self->parts || !self->columns || !self->tokens) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < self->n_columns; i++)
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(columns, i), "ii", &self->columns[i].kind,
                              &self->columns[i].store))
            return -1;
    for (i = 0; i < self->n_parts; i++) {
        Part *part = &self->parts[i];
        PyObject *arg, *specs;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(parts, i), "iO", &part->kind, &arg))
            return -1;
        if (part->kind == P_WHOLE) {
            if (PyBytes_AsStringAndSize(arg, (char **)&part->lit, &part->litlen) < 0)
                return -1;
            continue;
        }
        if (part->kind == P_QUOTED)
            specs = PyTuple_Pack(1, arg);
        else {
            if (!PyArg_ParseTuple(arg, "pO!", &part->rest, &PyTuple_Type, &specs))
                return -1;
            Py_INCREF(specs);
        }
        if (specs == NULL)
            return -1;
        part->first = (int)n_tokens;
        part->count = (int)PyTuple_GET_SIZE(specs);
        for (k = 0; k < part->count; k++, n_tokens++) {
            Token *t;
            PyObject *value;
            if (n_tokens >= MAX_TOKENS) {
                PyErr_SetString(PyExc_ValueError, "too many tokens for the compiled collector");
                Py_DECREF(specs);
                return -1;
            }
            t = &self->tokens[n_tokens];
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(specs, k), "iOp", &t->op, &value, &t->nonempty)) {
                Py_DECREF(specs);
                return -1;
            }
            if (t->op == T_LIT) {
                if (PyBytes_AsStringAndSize(value, (char **)&t->lit, &t->litlen) < 0) {
                    Py_DECREF(specs);
                    return -1;
                }
            }
            else if (t->op == T_COL || t->op == T_DATE || t->op == T_ZONE) {
                t->col = (int)PyLong_AsLong(value);
                if ((t->col == -1 && PyErr_Occurred()) || t->col < 0 || t->col >= self->n_columns) {
                    PyErr_SetString(PyExc_ValueError, "a token names no column");
                    Py_DECREF(specs);
                    return -1;
                }
            }
        }
        Py_DECREF(specs);
        if (part->kind == P_TOKENS && part->count == 0) {
            PyErr_SetString(PyExc_ValueError, "a part of no token");
            return -1;
        }
    }
    self->n_tokens = (int)n_tokens;
    self->last = &self->times[0];
    for (k = 0; k < n_tokens; k++)     /* the zone follows its date */
        if (self->tokens[k].op == T_DATE &&
                (k + 1 >= n_tokens || self->tokens[k + 1].op != T_ZONE)) {
            PyErr_SetString(PyExc_ValueError, "a date token without its zone after it");
            return -1;
        }
    return 0;
}

static void
collector_dealloc(Collector *self)
{
    int i;
    for (i = 0; i < TIME_SLOTS; i++)
        Py_CLEAR(self->times[i].epoch);
    Py_XDECREF(self->plan);
    Py_XDECREF(self->epoch);
    Py_XDECREF(self->spaces_fit);
    PyMem_Free(self->parts);
    PyMem_Free(self->tokens);
    PyMem_Free(self->columns);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject CollectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plogd.formats._split.Collector",
    .tp_basicsize = sizeof(Collector),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The split path of one format and field set: lines -> (columns, misfits) or None.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)collector_init,
    .tp_dealloc = (destructor)collector_dealloc,
    .tp_call = (ternaryfunc)collector_call,
    .tp_methods = collector_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_split",
    .m_doc = "plogd's compiled split path (see compiled.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__split(void)
{
    PyObject *m;
    if (PyType_Ready(&CollectorType) < 0)
        return NULL;
    if ((m = PyModule_Create(&module)) == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Collector", (PyObject *)&CollectorType) < 0
            || PyModule_AddIntConstant(m, "VERSION", SPLIT_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
