/* hdf5_util.h: libhdf5 glue shared by the HDF5 writer and loader: error messages from the library's error stack,
 * scalar attributes, text datasets. Only built with HDF5. */
#pragma once
#ifdef QB_HAVE_HDF5
#include <hdf5.h>
#include <stddef.h>
#include "base/error.h"

/* Sets err to "path: what: <innermost HDF5 message>" (strerror of the system call when the library reports an errno);
 * clears the HDF5 error stack; returns -1. */
int qb_h5_error(qb_err *err, const char *path, const char *what);
/* Scalar attributes on an object. */
int qb_h5_attr_str(hid_t obj, const char *name, const char *value);
int qb_h5_attr_int(hid_t obj, const char *name, int value);
/* Reads an integer attribute; -1 when absent or unreadable. */
int qb_h5_attr_read_int(hid_t obj, const char *name, int *value);
/* Reads a scalar string dataset (fixed or variable length) into a malloc'd NUL-terminated buffer. */
int qb_h5_read_text(hid_t file, const char *dataset, char **text, size_t *len, const char *path, qb_err *err);
#endif
