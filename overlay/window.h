#ifndef MMS_WINDOW_H
#define MMS_WINDOW_H

/*
 * The SDL2 window, a sink driver (io/sink.h): shows each frame written,
 * paced by the caller, with a HUD (fps, inference ms, mask age). It owns
 * its pause: paused (MMS_SINK_CTRL_PAUSE), it keeps showing the frozen
 * frame, marked PAUSED, while frames are still written, and draws it again
 * when uncovered. Keys come back as events (MMS_SINK_CTRL_CHECK_EVENTS):
 * space toggles pause, o asks for the next overlay style, q or Esc and the
 * close button close it; f toggles fullscreen by itself. The window is
 * resizable and keeps the video's aspect ratio. Frames are drawn and keys
 * read on the thread that writes and controls (in a pipeline, the window's
 * own writer); open and close may happen on another, never at the same
 * time.
 */

#include "io/sink.h"

extern const struct mms_sink_driver mms_sink_window;

/* Whether a display is there to open a window on ($DISPLAY or
 * $WAYLAND_DISPLAY set). */
int mms_window_available(void);

#endif
