// ShutdownSignals: SIGINT and SIGTERM caught from construction on, so a signal that arrives while
// a server is still starting is not lost (nor does it kill the process halfway).
#pragma once

#include <signal.h>

namespace till {

class ShutdownSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread; threads it starts afterwards inherit the
  // mask, so the signals stay pending until wait() takes one. Construct before starting threads.
  ShutdownSignals();
  // Restores the calling thread's previous mask: a second signal then has its default effect
  // (a second Ctrl-C during a slow shutdown kills the process at once).
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // Blocks until SIGINT or SIGTERM is pending and returns its number.
  int wait();

 private:
  sigset_t signals_;
  sigset_t previous_;
};

}  // namespace till
