/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth's pause: the only process of a pod sandbox. It holds the pod's namespaces by living, reaps the
 * zombies re-parented to it (PID 1 of the pod's PID namespace when the pod shares one), and ends with 0 on
 * SIGINT or SIGTERM, as Kubernetes' pause does. Built static so a rootfs holding only it runs it.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void
on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void
on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        static const char v[] = "berth pause 0.1.0\n";
        return write(1, v, sizeof(v) - 1) == (ssize_t)(sizeof(v) - 1) ? 0 : 1;
    }
    if (getpid() != 1) { /* still fine (host PID namespace): kubelet's pause only warns too */
        static const char w[] = "pause: not PID 1\n";
        if (write(2, w, sizeof(w) - 1) < 0)
            return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
    return 42; /* not reached */
}
