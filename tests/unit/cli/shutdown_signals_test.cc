#include "cli/shutdown_signals.h"

#include <gtest/gtest.h>

#include <thread>

namespace till {
namespace {

TEST(ShutdownSignals, ASignalBeforeWaitIsKeptAndReturned) {
  ShutdownSignals signals;
  std::thread other([] {});      // started after construction: inherits the blocked mask
  ASSERT_EQ(raise(SIGTERM), 0);  // pending, not fatal
  other.join();
  EXPECT_EQ(signals.wait(), SIGTERM);
}

TEST(ShutdownSignals, RestoresTheMaskWhenDestroyed) {
  { ShutdownSignals signals; }
  sigset_t current;
  pthread_sigmask(SIG_SETMASK, nullptr, &current);
  EXPECT_FALSE(sigismember(&current, SIGINT));
  EXPECT_FALSE(sigismember(&current, SIGTERM));
}

}  // namespace
}  // namespace till
