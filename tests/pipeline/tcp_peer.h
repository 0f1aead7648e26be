#ifndef MMS_TEST_TCP_PEER_H
#define MMS_TEST_TCP_PEER_H

/*
 * The other end of a TCP connection, for the pipeline tests: a real
 * listening socket on 127.0.0.1 that accepts every connection on a thread
 * of its own. It either leaves what arrives in the socket (a display that
 * stopped reading) or reads and counts it; given a file, it sends that
 * file down the first connection and closes it, and keeps every later
 * connection open without a byte (a source that answers and then says
 * nothing).
 */

#include <stdint.h>

struct tcp_peer;

/* rcvbuf: SO_RCVBUF of the accepted sockets (0: the system's), so that a
 * peer that does not read fills up within seconds. serve: NULL or a file. */
int tcp_peer_start(int rcvbuf, const char *serve, struct tcp_peer **out);
/* Before the first connection: the file goes down the first n (default 1)
 * connections, each then closed, so a source sees it end n times. */
void tcp_peer_serve(struct tcp_peer *p, int n);
const char *tcp_peer_url(const struct tcp_peer *p); /* tcp://127.0.0.1:PORT */
/* Reads (and counts) what arrives from now on, or stops reading. */
void tcp_peer_read(struct tcp_peer *p, int on);
int64_t tcp_peer_bytes(struct tcp_peer *p);
int tcp_peer_accepted(struct tcp_peer *p);
/* Closes every connection and the listener; NULL is fine. */
void tcp_peer_stop(struct tcp_peer *p);

#endif
