/* hdf5_util.c: see hdf5_util.h. */
#include "export/hdf5_util.h"

#ifdef QB_HAVE_HDF5
#include <stdlib.h>
#include <string.h>

typedef struct stack_msg {
    char desc[512];
    int errno_value;
    bool have;
} stack_msg;

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *user) {
    stack_msg *m = user;
    if (n == 0 && e->desc) {
        snprintf(m->desc, sizeof m->desc, "%s", e->desc);
        m->have = true;
    }
    const char *en = e->desc ? strstr(e->desc, "errno = ") : NULL;
    if (en && !m->errno_value) m->errno_value = atoi(en + 8);
    return 0;
}

int qb_h5_error(qb_err *err, const char *path, const char *what) {
    stack_msg m = {0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &m);
    H5Eclear2(H5E_DEFAULT);
    if (m.errno_value > 0) return qb_errorf(err, "%s: %s: %s", path, what, strerror(m.errno_value));
    return qb_errorf(err, "%s: %s: %s", path, what, m.have ? m.desc : "HDF5 error");
}

static int attr(hid_t obj, const char *name, hid_t type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = space < 0 ? -1 : H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, value) < 0 ? -1 : 0;
    if (a >= 0 && H5Aclose(a) < 0) rc = -1;
    if (space >= 0) H5Sclose(space);
    return rc;
}

int qb_h5_attr_str(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int rc = H5Tset_size(t, strlen(value) + 1) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ? -1 : attr(obj, name, t, value);
    H5Tclose(t);
    return rc;
}

int qb_h5_attr_int(hid_t obj, const char *name, int value) { return attr(obj, name, H5T_NATIVE_INT, &value); }

int qb_h5_attr_read_int(hid_t obj, const char *name, int *value) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int rc = a < 0 || H5Aread(a, H5T_NATIVE_INT, value) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    return rc;
}

int qb_h5_read_text(hid_t file, const char *dataset, char **text, size_t *len, const char *path, qb_err *err) {
    *text = NULL;
    *len = 0;
    hid_t ds = H5Dopen2(file, dataset, H5P_DEFAULT);
    if (ds < 0) return qb_h5_error(err, path, dataset);
    hid_t ft = H5Dget_type(ds), space = H5Dget_space(ds);
    int rc = 0;
    if (ft < 0 || space < 0 || H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_ndims(space) != 0) {
        rc = qb_errorf(err, "%s: %s: expected a scalar string dataset", path, dataset);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        char *v = NULL;
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0 || !v) {
            rc = qb_h5_error(err, path, dataset);
        } else {
            *len = strlen(v);
            *text = malloc(*len + 1);
            if (*text) memcpy(*text, v, *len + 1);
            else rc = qb_errorf(err, "%s: out of memory reading %s", path, dataset);
            H5Dvlen_reclaim(mt, space, H5P_DEFAULT, &v);
        }
        if (mt >= 0) H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(ft);
        *text = malloc(n + 1);
        if (!*text) rc = qb_errorf(err, "%s: out of memory reading %s", path, dataset);
        else if (H5Dread(ds, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, *text) < 0) rc = qb_h5_error(err, path, dataset);
        else {
            (*text)[n] = '\0';
            *len = strnlen(*text, n);
        }
    }
    if (ft >= 0) H5Tclose(ft);
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}
#endif
