// Entry point of the `till` command line: parses arguments and runs one subcommand.
#pragma once

namespace till {

// Returns the process exit code (see cli/commands.h).
int run_cli(int argc, char** argv);

}  // namespace till
