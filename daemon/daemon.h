#ifndef MMSD_DAEMON_H
#define MMSD_DAEMON_H

/*
 * mmsd's event loop (libuv): the HTTP API, the pipelines of the config
 * file, signals (SIGTERM/SIGINT stop and finalise every recording, SIGHUP
 * reloads the file), systemd notifications and the watchdog.
 */

#include "daemon/config.h"

/* Runs until stopped by a signal. Takes the loaded config (left empty).
 * Returns the process exit status: 0 after a clean stop, 1 when the
 * daemon could not start (the HTTP address, the token, the model). */
int mmsd_daemon_run(struct mmsd_config *cfg);

#endif
