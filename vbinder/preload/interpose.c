/* The next definitions of the functions this library interposes (libc's, or another preload's),
 * found once with dlsym(RTLD_NEXT), and the library's debug output.
 *
 * Wrappers may run before this library's constructor (from another library's constructor), so
 * each one calls vb_init first; mmap, munmap and ioctl fall back to the raw system call while
 * nothing is resolved, so that a malloc that maps memory never recurses into dlsym.
 */
#include "vbpreload.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vb_real vb_real;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int debug = -1;

#define RESOLVE(name) vb_real.name = (__typeof__(vb_real.name))dlsym(RTLD_NEXT, #name)

static void resolve(void)
{
    RESOLVE(ioctl);
    RESOLVE(mmap);
    RESOLVE(munmap);
    RESOLVE(open);
    RESOLVE(openat);
    RESOLVE(stat);
    RESOLVE(lstat);
    RESOLVE(fstat);
    RESOLVE(fstatat);
    RESOLVE(statx);
    RESOLVE(access);
    RESOLVE(faccessat);
    RESOLVE(euidaccess);
}

void vb_init(void)
{
    pthread_once(&once, resolve);
}

void vb_debug(const char *fmt, ...)
{
    if (debug < 0) {
        const char *env = getenv("VBINDER_PRELOAD_DEBUG");
        debug = env && *env && strcmp(env, "0");
    }
    if (!debug)
        return;
    char line[512];
    int n = snprintf(line, sizeof line, "vbinder preload[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    (void)!write(2, line, (size_t)n);
}

/* fork: the child has no mapped area and holds none of the locks another thread held. */
static void before_fork(void)
{
    vb_area_lock();
}

static void after_fork_parent(void)
{
    vb_area_unlock();
}

static void after_fork_child(void)
{
    vb_area_after_fork();
    vb_device_after_fork();
    vb_memory_after_fork();
    vb_channel_after_fork();
    vb_thread_forget_fast_path();
}

__attribute__((constructor)) static void interpose_init(void)
{
    vb_init();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
