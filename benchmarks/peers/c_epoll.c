/*
 * Peer for the benchmark suite: a single-threaded epoll echo server in C,
 * the near-limit reference (one thread, as echod runs by default). Reads
 * into one shared 64 KiB buffer and writes straight back; what a write
 * could not take is kept per connection, and that connection is not read
 * again until it is flushed. Usage: c_epoll PORT (IPv6 and IPv4 on [::]).
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
  int fd;
  char *pending; /* bytes a write did not take */
  size_t length;
};

static char buffer[65536];

static void drop(struct conn *c) {
  close(c->fd);
  free(c->pending);
  free(c);
}

/* Writes what is pending; 1 when all of it went, 0 when the socket is full, -1 on error. */
static int flush(struct conn *c) {
  while (c->length > 0) {
    ssize_t w = send(c->fd, c->pending, c->length, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    memmove(c->pending, c->pending + w, c->length - (size_t)w);
    c->length -= (size_t)w;
  }
  free(c->pending);
  c->pending = NULL;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: c_epoll PORT\n");
    return 2;
  }
  int listener = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int off = 0, on = 1;
  setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(argv[1]))};
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0) {
    perror("c_epoll");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  struct epoll_event events[256];
  for (;;) {
    int ready = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < ready; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          struct epoll_event add = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add);
        }
        continue;
      }
      if (c->length > 0) {
        int flushed = flush(c);
        if (flushed < 0) drop(c);
        if (flushed == 1) {
          struct epoll_event mod = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
        }
        continue;
      }
      ssize_t n = recv(c->fd, buffer, sizeof buffer, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        drop(c);
        continue;
      }
      if (n < 0) continue;
      ssize_t sent = 0;
      while (sent < n) {
        ssize_t w = send(c->fd, buffer + sent, (size_t)(n - sent), MSG_NOSIGNAL);
        if (w < 0) break;
        sent += w;
      }
      if (sent < n && errno != EAGAIN) {
        drop(c);
        continue;
      }
      if (sent < n) {
        /* The peer is not reading: keep the rest and wait until it can be written. */
        c->length = (size_t)(n - sent);
        c->pending = malloc(c->length);
        memcpy(c->pending, buffer + sent, c->length);
        struct epoll_event mod = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
      }
    }
  }
}
