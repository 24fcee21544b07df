/* SPDX-License-Identifier: Apache-2.0 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static void
notify_socket_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
        LOG_WARN("NOTIFY_SOCKET=%s is not a usable unix socket path", path);
        return;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        LOG_WARN("notify %s on NOTIFY_SOCKET=%s: %s", msg, path, strerror(errno));
    close(fd);
}

void
berth__notify_ready(int ready_fd)
{
    notify_socket_send("READY=1");
    if (ready_fd >= 0) {
        static const char line[] = "READY=1\n";
        if (write(ready_fd, line, sizeof(line) - 1) < 0)
            LOG_WARN("write READY=1 to --ready-fd %d: %s", ready_fd, strerror(errno));
        close(ready_fd);
    }
}

void
berth__notify_stopping(void)
{
    notify_socket_send("STOPPING=1");
}
