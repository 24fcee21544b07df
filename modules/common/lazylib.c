/* SPDX-License-Identifier: Apache-2.0 */
/* Shared libraries opened on first use (lazylib.h). */
#include "lazylib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int
lazylib_open(lazylib_t *lib)
{
    /* RTLD_LOCAL: the library's symbols serve this table only, as a DT_NEEDED of a module's would */
    lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (lib->handle == NULL) {
        const char *why = dlerror();
        snprintf(lib->failure, sizeof(lib->failure), "%s: cannot open: %s", lib->soname,
                 why ? why : "unknown error");
        return -1;
    }
    return 0;
}

void
lazylib_resolve(lazylib_t *lib, const char *name, void *slot, size_t size)
{
    void *sym = dlsym(lib->handle, name);
    if (sym == NULL && lib->failure[0] == '\0')
        snprintf(lib->failure, sizeof(lib->failure), "%s: no function %s", lib->soname, name);
    /* POSIX: a dlsym result converts to a function pointer; memcpy keeps that out of ISO C's way */
    if (size == sizeof(sym))
        memcpy(slot, &sym, sizeof(sym));
    else if (lib->failure[0] == '\0')
        snprintf(lib->failure, sizeof(lib->failure),
                 "%s: %s: function pointers are not pointer-sized", lib->soname, name);
}

void
lazylib_finish(lazylib_t *lib)
{
    if (lib->failure[0] == '\0' && lib->on_open) {
        const char *why = lib->on_open();
        if (why)
            snprintf(lib->failure, sizeof(lib->failure), "%s: %s", lib->soname, why);
    }
    if (lib->failure[0] == '\0')
        atomic_store_explicit(&lib->ready, 1, memory_order_release);
}

int
lazylib_result(lazylib_t *lib, const berth_core_api_t *api, berth_error_t **err)
{
    if (atomic_load_explicit(&lib->ready, memory_order_acquire))
        return 0;
    if (api == NULL)
        return BERTH_EUNAVAILABLE;
    return api->error_make(err, BERTH_EUNAVAILABLE, "%s", lib->failure);
}
