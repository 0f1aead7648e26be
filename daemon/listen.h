#ifndef MMSD_LISTEN_H
#define MMSD_LISTEN_H

/*
 * Listen addresses: the one syntax of mmsd's `listen` option and of the
 * HTTP server it configures (daemon/http.h), so that what the config
 * accepts is exactly what the server binds.
 *
 *   a.b.c.d:PORT    IPv4
 *   [v6addr]:PORT   IPv6; the brackets are required ("::1:80" reads two ways)
 *
 * Numeric only: a daemon that must be up before the resolver is should not
 * depend on it, and "localhost" may well resolve to ::1. PORT is 0..65535
 * in decimal, nothing before or after it.
 *
 * Port 0 asks the kernel for any free port when the server binds. Tests
 * need it (a fixed port races with everything else on the machine), and a
 * daemon started with it logs the port it got (mmsd_http_address()). A
 * service others must find should set a port of its own.
 */

#include <stddef.h>
#include <sys/socket.h>

struct mms_err;

/* Fills *ss, ready for bind(): 0, or -EINVAL with *ss zeroed and err (may
 * be NULL) saying what is expected. */
int mmsd_listen_parse(const char *s, struct sockaddr_storage *ss, struct mms_err *err);

/* 1 for 127.0.0.0/8 and ::1: the only addresses served without a token. */
int mmsd_listen_is_loopback(const struct sockaddr_storage *ss);

/* Writes ss in the syntax above ("127.0.0.1:8089", "[::1]:8089"): 0, or
 * -EAFNOSUPPORT for a family other than IPv4/IPv6, -ENOSPC when buf is
 * too short (it then holds ""). */
int mmsd_listen_format(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
