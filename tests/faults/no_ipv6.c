/*
 * LD_PRELOAD shim for the fault tests: makes this process's kernel look
 * like one booted without IPv6 (ipv6.disable=1), where creating an IPv6
 * socket fails with EAFNOSUPPORT. A network namespace with IPv6 disabled
 * by sysctl cannot show this: there, `::` still binds.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol) {
  static int (*real_socket)(int, int, int);
  if (domain == AF_INET6) {
    errno = EAFNOSUPPORT;
    return -1;
  }
  if (!real_socket) real_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
  return real_socket(domain, type, protocol);
}
