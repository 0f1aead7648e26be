#ifndef MMS_QUEUE_H
#define MMS_QUEUE_H

/*
 * Bounded FIFOs of pointers between the pipeline's threads. Offline, a
 * full queue blocks its producer: nothing is dropped and the slowest stage
 * sets the pace. Live, mms_queue_push_latest() never blocks: when the queue
 * is full the oldest item comes back to the caller to be recycled, so a
 * one-slot queue is a "latest frame wins" mailbox.
 *
 * Closing wakes every waiter; pushes then fail and pops drain what is left
 * before failing, so a pipeline shuts down front to back without losing
 * the frames already decoded.
 */

struct mms_queue;

int mms_queue_create(int capacity, struct mms_queue **q);
void mms_queue_destroy(struct mms_queue *q);

/* Blocks while full. 0, or -EPIPE once closed. */
int mms_queue_push(struct mms_queue *q, void *item);
/* Waits up to timeout_ms for room: 0, -ETIMEDOUT (the item stays the
 * caller's), or -EPIPE once closed. */
int mms_queue_push_timed(struct mms_queue *q, void *item, int timeout_ms);
/* Never blocks: 0, -EAGAIN when full (the item stays the caller's), or
 * -EPIPE once closed. */
int mms_queue_try_push(struct mms_queue *q, void *item);
/* Never blocks: when full, the oldest item is removed and returned in
 * *dropped (else *dropped = NULL). -EPIPE once closed. */
int mms_queue_push_latest(struct mms_queue *q, void *item, void **dropped);
/* Waits up to timeout_ms (< 0: forever). 0, -ETIMEDOUT, or -EPIPE when
 * closed and empty. */
int mms_queue_pop(struct mms_queue *q, void **item, int timeout_ms);
void mms_queue_close(struct mms_queue *q);
int mms_queue_count(struct mms_queue *q);

#endif
