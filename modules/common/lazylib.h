/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared libraries opened on first use instead of at module load.
 *
 * A module that links libarchive, libcurl or libcrypto maps them (and their own dependencies: ICU, libxml2,
 * libstdc++, GnuTLS, Kerberos, LDAP, ...) into berthd at start, whether or not a layer is ever unpacked or an
 * image pulled: about 10 MiB and 40 ms of berthd's start. Instead a module links a table of the library's
 * functions, filled by dlopen(SONAME) and dlsym on the first call that needs them:
 *
 *   lib_archive.h:  #define LIBARCHIVE_SYMBOLS(X) X(archive_read_new) X(archive_read_free) ...
 *                   LAZYLIB_DECLARE(libarchive, LIBARCHIVE_SYMBOLS)
 *   lib_archive.c:  LAZYLIB_DEFINE(libarchive, LIBARCHIVE_SONAME, LIBARCHIVE_SYMBOLS, NULL)
 *   a call site:    if ((rc = libarchive_load(api, err)) < 0) return rc;   (once per operation)
 *                   struct archive *a = libarchive.archive_read_new();
 *
 * Each pointer has the type of the function in the library's own header (__typeof__), so calls are checked
 * as before. The SONAME (libarchive.so.13) is read from the library file at configure time, the major version
 * the headers belong to. The first load opens the library once for all threads (pthread_once); a library
 * that cannot be opened, or lacks a function, makes every load fail with BERTH_EUNAVAILABLE and a message
 * naming it ("libarchive.so.13: cannot open: ..."), so only the operations that need it fail.
 *
 * A library, once opened, stays mapped until the process exits: the table lives in the module, and a module
 * finished and initialised again (a reload) finds it still valid; one unloaded and loaded again opens it
 * again (dlopen only counts a reference). Libraries with global state (libcurl) are initialised by the
 * table's on_open and never finished, for the same reason.
 */
#ifndef BERTH_COMMON_LAZYLIB_H
#define BERTH_COMMON_LAZYLIB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <berth/module.h>

typedef struct lazylib {
    const char *soname;
    /* run once after every function resolved; returns NULL, or why the library is not usable */
    const char *(*on_open)(void);
    pthread_once_t once;
    atomic_int ready;  /* 1 once the table is complete and on_open succeeded */
    void *handle;      /* never closed (see above) */
    char failure[512]; /* why it is not usable */
} lazylib_t;

/* Opens lib->soname. 0, or -1 with lib->failure set. */
int lazylib_open(lazylib_t *lib);
/* Stores the address of `name` into the function pointer at slot (size bytes); records the first missing. */
void lazylib_resolve(lazylib_t *lib, const char *name, void *slot, size_t size);
/* Marks the library usable when nothing failed, after on_open. */
void lazylib_finish(lazylib_t *lib);
/* 0 when usable, else BERTH_EUNAVAILABLE with lib->failure as the message (no record when api is NULL:
 * pure functions with no error record to fill check with name_load(NULL, NULL)). */
int lazylib_result(lazylib_t *lib, const berth_core_api_t *api, berth_error_t **err);

#define LAZYLIB_SLOT(fn) __typeof__(&fn) fn;
#define LAZYLIB_RESOLVE(fn) lazylib_resolve(lib, #fn, &table->fn, sizeof(table->fn));

/* The table type name_t, the table `name`, and:
 *   int name_load(api, err)   opens the library on the first call; 0 or BERTH_EUNAVAILABLE
 *   int name_loaded(void)     whether a load has succeeded (no loading: for clean-ups) */
#define LAZYLIB_DECLARE(name, SYMBOLS)                                 \
    typedef struct name##_table {                                      \
        SYMBOLS(LAZYLIB_SLOT)                                          \
    } name##_t;                                                        \
    extern name##_t name;                                              \
    int name##_load(const berth_core_api_t *api, berth_error_t **err); \
    int name##_loaded(void);

/* The definitions for one LAZYLIB_DECLARE, in one .c file. on_open: a `const char *(*)(void)` or NULL. */
#define LAZYLIB_DEFINE(name, SONAME, SYMBOLS, ON_OPEN)                          \
    name##_t name;                                                              \
    static lazylib_t name##_lib = {                                             \
        .soname = SONAME, .on_open = ON_OPEN, .once = PTHREAD_ONCE_INIT};       \
    static void name##_open(void)                                               \
    {                                                                           \
        lazylib_t *lib = &name##_lib;                                           \
        name##_t *table = &name;                                                \
        if (lazylib_open(lib) == 0) {                                           \
            SYMBOLS(LAZYLIB_RESOLVE)                                            \
        }                                                                       \
        lazylib_finish(lib);                                                    \
    }                                                                           \
    int name##_load(const berth_core_api_t *lazy_api, berth_error_t **lazy_err) \
    {                                                                           \
        if (atomic_load_explicit(&name##_lib.ready, memory_order_acquire))      \
            return 0;                                                           \
        pthread_once(&name##_lib.once, name##_open);                            \
        return lazylib_result(&name##_lib, lazy_api, lazy_err);                 \
    }                                                                           \
    int name##_loaded(void)                                                     \
    {                                                                           \
        return atomic_load_explicit(&name##_lib.ready, memory_order_acquire);   \
    }

#endif
